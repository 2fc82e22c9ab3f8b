// The umbrella module: `import Loupe` brings in every library layer.
@_exported import LoupeTensor
@_exported import LoupeGraph
@_exported import LoupeONNX
@_exported import LoupeExplain
@_exported import LoupeImage
