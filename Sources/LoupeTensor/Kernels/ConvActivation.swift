import CLoupeKernels

/// An element-wise activation a convolution applies to its own output while each block of it is
/// still in cache, instead of a separate pass over the whole tensor: the fused Conv→Relu,
/// Conv→HardSwish and Conv→SiLU (Sigmoid + Mul) of inference graphs.
public enum ConvActivation: Sendable, Equatable {
    case none
    /// max(x, 0), NaN kept (torch.relu).
    case relu
    /// x·sigmoid(x).
    case silu
    /// x·max(0, min(1, x/6 + 1/2)) (ONNX HardSwish).
    case hardSwish

    /// The kernels' LOUPE_ACT_* code.
    var code: Int32 {
        switch self {
        case .none: return Int32(LOUPE_ACT_NONE)
        case .relu: return Int32(LOUPE_ACT_RELU)
        case .silu: return Int32(LOUPE_ACT_UNARY) + Int32(LOUPE_VU_SILU.rawValue)
        case .hardSwish: return Int32(LOUPE_ACT_UNARY) + Int32(LOUPE_VU_HARD_SWISH.rawValue)
        }
    }

    /// Applies the activation to `a` in place (the paths that cannot apply it inside the kernel).
    func apply(_ a: inout [Float]) {
        switch self {
        case .none: return
        case .relu: Kernels.reluInPlace(&a)
        case .silu, .hardSwish:
            let op = code - Int32(LOUPE_ACT_UNARY)
            a.withUnsafeMutableBufferPointer { b in
                guard let p = b.baseAddress else { return }
                loupe_vunary(op, p, p, b.count, 0, 0)
            }
        }
    }
}
