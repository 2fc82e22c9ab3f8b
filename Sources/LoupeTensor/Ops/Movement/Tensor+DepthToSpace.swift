/// Channel ordering of ONNX `DepthToSpace`.
public enum DepthToSpaceMode: String, Sendable, Equatable {
    /// Depth-column-row (default; TensorFlow order): channel = (by·b + bx)·C' + c.
    case dcr = "DCR"
    /// Column-row-depth (PyTorch `pixel_shuffle`): channel = c·b² + by·b + bx.
    case crd = "CRD"
}

extension Tensor {
    /// ONNX `DepthToSpace` on NCHW: `[N, C·b², H, W]` → `[N, C, H·b, W·b]`.
    public func depthToSpace(blockSize b: Int, mode: DepthToSpaceMode = .dcr) throws -> Tensor {
        let p = try Movement.depthToSpacePlan(shape: shape, b: b, mode: mode)
        return try reshaped(p.split).permuted(p.perm).reshaped(p.out)
    }

    /// VJP of ``depthToSpace(blockSize:mode:)``: the inverse rearrangement.
    public static func depthToSpaceGradient(_ grad: Tensor, inputShape: [Int], blockSize b: Int, mode: DepthToSpaceMode = .dcr) throws -> Tensor {
        let p = try Movement.depthToSpacePlan(shape: inputShape, b: b, mode: mode)
        return try grad.reshaped(p.perm.map { p.split[$0] }).permuted(Tensor.inversePermutation(p.perm)).reshaped(inputShape)
    }

    /// ONNX `SpaceToDepth` on NCHW: `[N, C, H, W]` → `[N, C·b², H/b, W/b]`, the inverse of
    /// DepthToSpace in the same mode (DCR: channel = (by·b + bx)·C + c; CRD, a newer opset
    /// attribute: channel = c·b² + by·b + bx).
    public func spaceToDepth(blockSize b: Int, mode: DepthToSpaceMode = .dcr) throws -> Tensor {
        let p = try Movement.spaceToDepthPlan(shape: shape, b: b, mode: mode)
        return try reshaped(p.split).permuted(p.perm).reshaped(p.out)
    }

    /// VJP of ``spaceToDepth(blockSize:)``.
    public static func spaceToDepthGradient(_ grad: Tensor, inputShape: [Int], blockSize b: Int, mode: DepthToSpaceMode = .dcr) throws -> Tensor {
        let p = try Movement.spaceToDepthPlan(shape: inputShape, b: b, mode: mode)
        return try grad.reshaped(p.perm.map { p.split[$0] }).permuted(Tensor.inversePermutation(p.perm)).reshaped(inputShape)
    }
}

extension Movement {
    /// A 6-D reshape, a permutation, and the 4-D output shape.
    struct BlockPlan {
        var split: [Int]
        var perm: [Int]
        var out: [Int]
    }

    static func depthToSpacePlan(shape: [Int], b: Int, mode: DepthToSpaceMode) throws -> BlockPlan {
        guard shape.count == 4, b >= 1, b <= 1 << 15, shape[1] % (b * b) == 0 else {
            throw TensorError.shapeMismatch(op: "DepthToSpace", expected: "NCHW input with C divisible by blocksize² (\(b)²)", got: [shape])
        }
        let (n, c, h, w) = (shape[0], shape[1] / (b * b), shape[2], shape[3])
        switch mode {
        case .dcr: return BlockPlan(split: [n, b, b, c, h, w], perm: [0, 3, 4, 1, 5, 2], out: [n, c, h * b, w * b])
        case .crd: return BlockPlan(split: [n, c, b, b, h, w], perm: [0, 1, 4, 2, 5, 3], out: [n, c, h * b, w * b])
        }
    }

    static func spaceToDepthPlan(shape: [Int], b: Int, mode: DepthToSpaceMode) throws -> BlockPlan {
        guard shape.count == 4, b >= 1, b <= 1 << 15, shape[2] % b == 0, shape[3] % b == 0 else {
            throw TensorError.shapeMismatch(op: "SpaceToDepth", expected: "NCHW input with H and W divisible by blocksize \(b)", got: [shape])
        }
        let (n, c, h, w) = (shape[0], shape[1], shape[2] / b, shape[3] / b)
        switch mode {
        case .dcr: return BlockPlan(split: [n, c, h, b, w, b], perm: [0, 3, 5, 1, 2, 4], out: [n, c * b * b, h, w])
        case .crd: return BlockPlan(split: [n, c, h, b, w, b], perm: [0, 1, 3, 5, 2, 4], out: [n, c * b * b, h, w])
        }
    }
}
