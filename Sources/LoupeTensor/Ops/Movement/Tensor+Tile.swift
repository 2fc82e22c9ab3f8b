extension Tensor {
    /// Repeats the whole tensor `repeats[d]` times along each axis (ONNX `Tile`, NumPy `tile`
    /// with one repeat per axis). Output shape: `shape[d] * repeats[d]`.
    public func tiled(_ repeats: [Int]) throws -> Tensor {
        Movement.gather(self, try Movement.tileTables(shape: shape, repeats: repeats))
    }

    /// VJP of ``tiled(_:)``: the sum of the cotangent over all copies.
    public static func tiledGradient(_ grad: Tensor, inputShape: [Int], repeats: [Int]) throws -> Tensor {
        try Movement.scatterAdd(grad, Movement.tileTables(shape: inputShape, repeats: repeats), sourceShape: inputShape, op: "Tile")
    }
}

extension Movement {
    static func tileTables(shape: [Int], repeats: [Int]) throws -> AxisTables {
        guard repeats.count == shape.count, repeats.allSatisfy({ $0 >= 0 }) else {
            throw TensorError.invalidArgument(op: "Tile", message: "repeats \(repeats) must be \(shape.count) non-negative counts")
        }
        let strides = Shape.strides(shape)
        let out = zip(shape, repeats).map { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        try checkAllocatable(out, op: "Tile")
        let tables = shape.indices.map { d in (0 ..< out[d]).map { ($0 % shape[d]) * strides[d] } }
        return AxisTables(shape: out, tables: tables)
    }
}
