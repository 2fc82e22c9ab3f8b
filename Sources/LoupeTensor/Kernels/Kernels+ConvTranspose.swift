/// Transposed 2-D convolution (ONNX ConvTranspose), expressed through the convolution adjoints:
/// its forward pass is the data gradient of the convolution it transposes, and its gradients are
/// that convolution's forward pass and weight gradient.
extension Kernels {
    /// `x` (N, C, H, W), `weight` (C, M/group, kH, kW), optional `bias` (M) → (N, M, outH, outW).
    /// `geometry` holds the paddings already resolved (auto_pad, output_shape); `outputSize` is
    /// the spatial output size (including output_padding).
    public static func convTranspose2d(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry p: ConvGeometry,
                                       outputSize: (Int, Int)) throws -> Tensor {
        guard x.rank == 4, weight.rank == 4, weight.shape[0] == x.shape[1] else {
            throw TensorError.shapeMismatch(op: "ConvTranspose", expected: "input (N, C, H, W) and weight (C, M/group, kH, kW)", got: [x.shape, weight.shape])
        }
        let m = weight.shape[1] * p.groups
        let outShape = [x.shape[0], m, outputSize.0, outputSize.1]
        var y = try conv2dBackwardInput(x, weight: weight, inputShape: outShape, geometry: p)
        if let bias {
            guard bias.count == m else {
                throw TensorError.shapeMismatch(op: "ConvTranspose", expected: "bias of \(m) elements", got: [bias.shape])
            }
            let b = try bias.floats("ConvTranspose")
            var v = try y.floats("ConvTranspose")
            let plane = outputSize.0 * outputSize.1
            v.withUnsafeMutableBufferPointer { vb in
                for i in 0..<(outShape[0] * m) {
                    let bv = b[i % m]
                    for j in (i * plane)..<((i + 1) * plane) { vb[j] += bv }
                }
            }
            y = Tensor(uncheckedShape: outShape, storage: .float32(v))
        }
        return y
    }

    /// Gradient of ``convTranspose2d(_:weight:bias:geometry:outputSize:)`` wrt its input.
    public static func convTranspose2dBackwardInput(_ gradOutput: Tensor, weight: Tensor, geometry p: ConvGeometry) throws -> Tensor {
        try conv2d(gradOutput, weight: weight, bias: nil, geometry: p)
    }

    /// Gradient of ``convTranspose2d(_:weight:bias:geometry:outputSize:)`` wrt its weight.
    public static func convTranspose2dBackwardWeight(_ gradOutput: Tensor, input: Tensor, weightShape: [Int],
                                                     geometry p: ConvGeometry) throws -> Tensor {
        try conv2dBackwardWeight(input, input: gradOutput, weightShape: weightShape, geometry: p)
    }
}
