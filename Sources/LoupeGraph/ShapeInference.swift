import LoupeTensor

extension Model {
    /// Shapes of every value for the given input shapes, found by running the model once on
    /// zeros (exact for every operator Loupe runs, with no per-operator shape rules to drift
    /// from the kernels). Symbolic input dimensions not given in `inputShapes` take `defaultDim`.
    ///
    /// - Returns: value name → shape, for inputs, constants and every computed value.
    public func inferShapes(inputShapes: [String: [Int]] = [:], defaultDim: Int = 1) throws -> [String: [Int]] {
        var feeds: [String: Tensor] = [:]
        for (info, _) in inputSlots {
            let shape = inputShapes[info.name] ?? (info.shape ?? []).map { $0.value ?? defaultDim }
            let n = shape.reduce(1, *)
            switch InputCheck.dtype(forONNX: info.elementType) ?? .float32 {
            case .float32: feeds[info.name] = Tensor(zeros: shape)
            case .int64: feeds[info.name] = try Tensor(shape: shape, ints: [Int64](repeating: 0, count: n))
            case .bool: feeds[info.name] = try Tensor(shape: shape, bools: [Bool](repeating: false, count: n))
            }
        }
        let pass = try forward(feeds)
        var out: [String: [Int]] = [:]
        for (s, shape) in pass.shapes.enumerated() { if let shape { out[valueNames[s]] = shape } }
        return out
    }
}

