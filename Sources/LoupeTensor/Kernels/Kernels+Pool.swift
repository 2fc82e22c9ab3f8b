import CLoupeKernels

/// 2-D max and average pooling over NCHW planes (ONNX MaxPool / AveragePool) and their adjoints.
extension Kernels {
    static func poolShapes(_ shape: [Int], _ p: ConvGeometry, ceilMode: Bool, op: String) throws -> (planes: Int, h: Int, w: Int, oh: Int, ow: Int) {
        try p.validate(op: op)
        guard shape.count == 4 else {
            throw TensorError.shapeMismatch(op: op, expected: "input (N, C, H, W)", got: [shape])
        }
        let (oh, ow) = try p.outputSize(height: shape[2], width: shape[3], ceilMode: ceilMode, op: op)
        return (shape[0] * shape[1], shape[2], shape[3], oh, ow)
    }

    /// Max pooling (N, C, H, W) → (N, C, outH, outW); padding never wins (acts as -∞).
    public static func maxPool2d(_ x: Tensor, geometry p: ConvGeometry, ceilMode: Bool = false) throws -> Tensor {
        let s = try poolShapes(x.shape, p, ceilMode: ceilMode, op: "MaxPool")
        let X = try x.floats("MaxPool")
        var Y = [Float](repeating: 0, count: s.planes * s.oh * s.ow)
        let win = p.window(inH: s.h, inW: s.w, outH: s.oh, outW: s.ow)
        X.withUnsafeBufferPointer { xb in Y.withUnsafeMutableBufferPointer { yb in
            guard let x0 = xb.baseAddress, let y0 = yb.baseAddress else { return }
            var wv = win
            loupe_maxpool_forward(x0, s.planes, &wv, y0)
        } }
        return Tensor(uncheckedShape: [x.shape[0], x.shape[1], s.oh, s.ow], storage: .float32(Y))
    }

    /// Gradient of ``maxPool2d(_:geometry:ceilMode:)``: each output's cotangent goes to the
    /// (first) input position that attained its maximum.
    public static func maxPool2dBackward(_ gradOutput: Tensor, input x: Tensor, geometry p: ConvGeometry,
                                         ceilMode: Bool = false) throws -> Tensor {
        let s = try poolShapes(x.shape, p, ceilMode: ceilMode, op: "MaxPool backward")
        guard gradOutput.shape == [x.shape[0], x.shape[1], s.oh, s.ow] else {
            throw TensorError.shapeMismatch(op: "MaxPool backward", expected: "output gradient \([x.shape[0], x.shape[1], s.oh, s.ow])", got: [gradOutput.shape])
        }
        let X = try x.floats("MaxPool"), GY = try gradOutput.floats("MaxPool")
        let win = p.window(inH: s.h, inW: s.w, outH: s.oh, outW: s.ow)
        // The kernel writes every element (zeroing each plane in cache before routing into it).
        let GX = [Float](unsafeUninitializedCapacity: X.count) { gxb, count in
            count = X.count
            X.withUnsafeBufferPointer { xb in GY.withUnsafeBufferPointer { gyb in
                guard let x0 = xb.baseAddress, let gy0 = gyb.baseAddress, let gx0 = gxb.baseAddress else {
                    for i in 0..<gxb.count { gxb[i] = 0 }   // no output windows: nothing routed
                    return
                }
                var wv = win
                loupe_maxpool_backward(x0, gy0, s.planes, &wv, gx0)
            } }
        }
        return Tensor(uncheckedShape: x.shape, storage: .float32(GX))
    }

    /// Average pooling (N, C, H, W) → (N, C, outH, outW). `countIncludePad` divides by the taps
    /// inside the padded input, else by the taps inside the input (ONNX count_include_pad).
    public static func averagePool2d(_ x: Tensor, geometry p: ConvGeometry, ceilMode: Bool = false,
                                     countIncludePad: Bool = false) throws -> Tensor {
        let s = try poolShapes(x.shape, p, ceilMode: ceilMode, op: "AveragePool")
        let X = try x.floats("AveragePool")
        var Y = [Float](repeating: 0, count: s.planes * s.oh * s.ow)
        let win = p.window(inH: s.h, inW: s.w, outH: s.oh, outW: s.ow)
        X.withUnsafeBufferPointer { xb in Y.withUnsafeMutableBufferPointer { yb in
            guard let x0 = xb.baseAddress, let y0 = yb.baseAddress else { return }
            var wv = win
            loupe_avgpool_forward(x0, s.planes, &wv, p.padBottom, p.padRight, countIncludePad ? 1 : 0, y0)
        } }
        return Tensor(uncheckedShape: [x.shape[0], x.shape[1], s.oh, s.ow], storage: .float32(Y))
    }

    /// Gradient of ``averagePool2d(_:geometry:ceilMode:countIncludePad:)`` for an input of `inputShape`.
    public static func averagePool2dBackward(_ gradOutput: Tensor, inputShape: [Int], geometry p: ConvGeometry,
                                             ceilMode: Bool = false, countIncludePad: Bool = false) throws -> Tensor {
        let s = try poolShapes(inputShape, p, ceilMode: ceilMode, op: "AveragePool backward")
        guard gradOutput.shape == [inputShape[0], inputShape[1], s.oh, s.ow] else {
            throw TensorError.shapeMismatch(op: "AveragePool backward", expected: "output gradient \([inputShape[0], inputShape[1], s.oh, s.ow])", got: [gradOutput.shape])
        }
        let GY = try gradOutput.floats("AveragePool")
        var GX = [Float](repeating: 0, count: inputShape.reduce(1, *))
        let win = p.window(inH: s.h, inW: s.w, outH: s.oh, outW: s.ow)
        GY.withUnsafeBufferPointer { gyb in GX.withUnsafeMutableBufferPointer { gxb in
            guard let gy0 = gyb.baseAddress, let gx0 = gxb.baseAddress else { return }
            var wv = win
            loupe_avgpool_backward(gy0, s.planes, &wv, p.padBottom, p.padRight, countIncludePad ? 1 : 0, gx0)
        } }
        return Tensor(uncheckedShape: inputShape, storage: .float32(GX))
    }

    /// Global average pooling: (N, C, spatial...) → (N, C, 1, ...), the mean of each plane
    /// (ONNX GlobalAveragePool). Vectorised and parallel over planes.
    public static func globalAveragePool(_ x: Tensor, op: String = "GlobalAveragePool") throws -> Tensor {
        guard x.rank >= 3 else {
            throw TensorError.shapeMismatch(op: op, expected: "input (N, C, spatial...)", got: [x.shape])
        }
        let size = x.shape.dropFirst(2).reduce(1, *), planes = x.shape[0] * x.shape[1]
        guard size > 0 else {
            throw TensorError.invalidArgument(op: op, message: "empty spatial extent in \(x.shape)")
        }
        let X = try x.floats(op)
        var Y = [Float](repeating: 0, count: planes)
        X.withUnsafeBufferPointer { xb in Y.withUnsafeMutableBufferPointer { yb in
            guard let x0 = xb.baseAddress, let y0 = yb.baseAddress else { return }
            loupe_global_avgpool(x0, planes, size, y0)
        } }
        let out = [x.shape[0], x.shape[1]] + [Int](repeating: 1, count: x.rank - 2)
        return Tensor(uncheckedShape: out, storage: .float32(Y))
    }

    /// Gradient of ``globalAveragePool(_:op:)`` for an input of `inputShape`: each plane gets
    /// its output cotangent divided by the plane size.
    public static func globalAveragePoolBackward(_ gradOutput: Tensor, inputShape: [Int],
                                                 op: String = "GlobalAveragePool backward") throws -> Tensor {
        guard inputShape.count >= 3 else {
            throw TensorError.shapeMismatch(op: op, expected: "input (N, C, spatial...)", got: [inputShape])
        }
        let size = inputShape.dropFirst(2).reduce(1, *), planes = inputShape[0] * inputShape[1]
        guard gradOutput.count == planes, size > 0 else {
            throw TensorError.shapeMismatch(op: op, expected: "output gradient of \(planes) elements for input \(inputShape)", got: [gradOutput.shape])
        }
        let G = try gradOutput.floats(op)
        var GX = [Float](repeating: 0, count: try Shape.checkedCount(inputShape, op: op))
        G.withUnsafeBufferPointer { gb in GX.withUnsafeMutableBufferPointer { gxb in
            guard let g0 = gb.baseAddress, let gx0 = gxb.baseAddress else { return }
            loupe_global_avgpool_grad(g0, planes, size, gx0)
        } }
        return Tensor(uncheckedShape: inputShape, storage: .float32(GX))
    }
}
