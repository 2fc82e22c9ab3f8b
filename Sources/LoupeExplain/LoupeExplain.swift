// Explainers: attribution methods on top of LoupeGraph's forward/backward (ARCHITECTURE.md).
import LoupeGraph
import LoupeTensor
