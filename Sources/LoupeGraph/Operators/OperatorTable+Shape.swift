extension OperatorTable {
    /// Shape computation and data movement: the Shape→Gather→Unsqueeze→Concat→Reshape chains of
    /// exported graphs and transformer plumbing. Implementations in `Operators/Shape/`.
    static let shapeOperators: [String: OperatorFactory] = [
        "Shape": { try ShapeOperator($0) },
        "Size": { try SizeOperator($0) },
        "Reshape": { try ReshapeOperator($0) },
        "Flatten": { try FlattenOperator($0) },
        "Squeeze": { try SqueezeOperator($0) },
        "Unsqueeze": { try UnsqueezeOperator($0) },
        "Transpose": { try TransposeOperator($0) },
        "Concat": { try ConcatOperator($0) },
        "Split": { try SplitOperator($0) },
        "Slice": { try SliceOperator($0) },
        "Gather": { try GatherAlongAxisOperator($0, elements: false) },
        "GatherElements": { try GatherAlongAxisOperator($0, elements: true) },
        "GatherND": { try GatherNDOperator($0) },
        "Scatter": { try ScatterElementsOperator($0) },
        "ScatterElements": { try ScatterElementsOperator($0) },
        "ScatterND": { try ScatterNDOperator($0) },
        "Tile": { try TileOperator($0) },
        "Pad": { try PadOperator($0) },
        "Range": { try RangeOperator($0) },
        "Constant": { try ConstantOperator($0) },
        "ConstantOfShape": { try ConstantOfShapeOperator($0) },
        "Trilu": { try TriluOperator($0) },
        "DepthToSpace": { try BlockRearrangeOperator($0, toSpace: true) },
        "SpaceToDepth": { try BlockRearrangeOperator($0, toSpace: false) },
        "OneHot": { try OneHotOperator($0) },
        "NonZero": { try NonZeroOperator($0) },
    ]
}
