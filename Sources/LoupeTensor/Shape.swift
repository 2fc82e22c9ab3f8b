/// Shape arithmetic shared by operations and graph code.
public enum Shape {
    /// Row-major strides, in elements.
    public static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= shape[i]
        }
        return s
    }

    /// NumPy/ONNX multidirectional broadcast of two shapes.
    public static func broadcast(_ a: [Int], _ b: [Int], op: String = "broadcast") throws -> [Int] {
        let r = max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else {
                throw TensorError.shapeMismatch(op: op, expected: "broadcastable shapes", got: [a, b])
            }
        }
        return out
    }

    /// Broadcast of many shapes.
    public static func broadcast(_ shapes: [[Int]], op: String = "broadcast") throws -> [Int] {
        var out: [Int] = []
        for s in shapes { out = try broadcast(out, s, op: op) }
        return out
    }

    /// Maps a possibly negative axis into `0..<rank`, or throws naming `op`.
    public static func normalizeAxis(_ axis: Int, rank: Int, op: String) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < rank else {
            throw TensorError.invalidArgument(op: op, message: "axis \(axis) out of range for rank \(rank)")
        }
        return a
    }
}

extension Shape {
    /// Largest element count Loupe will allocate for one tensor (2^31 floats = 8 GiB), so a
    /// corrupt dimension fails with an error instead of an overflow trap or an allocation
    /// failure (which Swift cannot catch).
    public static let maxElements = 1 << 31

    /// Product of `dims`, or an error naming `op` if a dimension is negative or the product
    /// overflows or exceeds ``maxElements``. Use for every shape that comes from user data.
    public static func checkedCount(_ dims: [Int], op: String) throws -> Int {
        var n = 1
        for d in dims {
            guard d >= 0 else { throw TensorError.invalidArgument(op: op, message: "negative dimension in shape \(dims)") }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow, p <= maxElements else {
                throw TensorError.invalidArgument(op: op, message: "shape \(dims) has more than \(maxElements) elements")
            }
            n = p
        }
        return n
    }
}
