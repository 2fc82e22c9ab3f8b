/// How ``Tensor/padded(begins:ends:mode:value:)`` fills the border (ONNX `Pad` modes).
public enum PadMode: String, Sendable, Equatable, CaseIterable {
    /// A constant value.
    case constant
    /// Mirror without repeating the edge: `[1,2,3]` padded by 2 → `[3,2,1,2,3,2,1]`.
    case reflect
    /// Repeat the edge element.
    case edge
    /// Wrap around (opset 19): `[1,2,3]` padded by 2 → `[2,3,1,2,3,1,2]`.
    case wrap
}

extension Tensor {
    /// Pads (or, for negative amounts, crops) each axis by `begins[d]` before and `ends[d]`
    /// after (ONNX `Pad`, whose `pads` input is `begins + ends`). Edge/reflect/wrap need a
    /// non-empty axis wherever they pad, and (as in ONNX Runtime) read from the data left after
    /// cropping. Reflect pads wider than the axis keep reflecting, as NumPy's `pad` does, where
    /// ONNX Runtime and PyTorch refuse them.
    public func padded(begins: [Int], ends: [Int], mode: PadMode = .constant, value: Double = 0) throws -> Tensor {
        Movement.gather(self, try Movement.padTables(shape: shape, begins: begins, ends: ends, mode: mode), fill: value)
    }

    /// VJP of ``padded(begins:ends:mode:value:)`` with respect to the input: constant mode
    /// crops the cotangent; reflect, edge and wrap also add the border back onto the elements it
    /// copied.
    public static func paddedGradient(_ grad: Tensor, inputShape: [Int], begins: [Int], ends: [Int], mode: PadMode = .constant) throws -> Tensor {
        try Movement.scatterAdd(grad, Movement.padTables(shape: inputShape, begins: begins, ends: ends, mode: mode),
                                sourceShape: inputShape, op: "Pad")
    }
}

extension Movement {
    static func padTables(shape: [Int], begins: [Int], ends: [Int], mode: PadMode) throws -> AxisTables {
        let r = shape.count
        guard begins.count == r, ends.count == r else {
            throw TensorError.invalidArgument(op: "Pad", message: "needs \(2 * r) pads for rank \(r), got \(begins.count) + \(ends.count)")
        }
        let strides = Shape.strides(shape)
        var out = shape
        for d in 0 ..< r {
            let (x, o1) = shape[d].addingReportingOverflow(begins[d])
            let (y, o2) = x.addingReportingOverflow(ends[d])
            out[d] = o1 || o2 ? Int.max : y
        }
        try checkAllocatable(out.map { max($0, 0) }, op: "Pad")
        var tables: [[Int]] = []
        for d in 0 ..< r {
            let n = shape[d], b = begins[d]
            out[d] = n + b + ends[d]
            guard out[d] >= 0 else {
                throw TensorError.invalidArgument(op: "Pad", message: "pads \(b), \(ends[d]) crop axis \(d) of size \(n) below zero")
            }
            let padding = b > 0 || ends[d] > 0
            // Border modes read from the data left after any cropping (negative pads), as ONNX
            // Runtime does: [lo, hi) of the original axis, m elements.
            let lo = max(0, -b), hi = n - max(0, -ends[d]), m = hi - lo
            if padding && mode != .constant && m <= 0 {
                throw TensorError.invalidArgument(op: "Pad", message: "\(mode.rawValue) mode cannot pad axis \(d) left empty by cropping")
            }
            var t = [Int](repeating: -1, count: out[d])
            for i in 0 ..< out[d] {
                var s = i - b
                if s < lo || s >= hi {
                    var k = s - lo  // position relative to the kept data
                    switch mode {
                    case .constant: continue
                    case .edge: k = k < 0 ? 0 : m - 1
                    case .wrap: k = ((k % m) + m) % m
                    case .reflect:
                        if m == 1 { k = 0 } else {
                            let period = 2 * (m - 1)
                            k = ((k % period) + period) % period
                            if k >= m { k = period - k }
                        }
                    }
                    s = lo + k
                }
                t[i] = s * strides[d]
            }
            tables.append(t)
        }
        return AxisTables(shape: out, tables: tables)
    }
}
