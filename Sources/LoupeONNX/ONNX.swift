import LoupeGraph
