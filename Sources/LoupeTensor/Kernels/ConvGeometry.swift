import CLoupeKernels

/// Geometry of a 2-D sliding window (convolution or pooling) over NCHW planes: kernel size,
/// strides, begin/end paddings, dilations and channel groups, with ONNX semantics.
public struct ConvGeometry: Sendable, Equatable {
    public var kernelH: Int, kernelW: Int
    public var strideH: Int, strideW: Int
    public var dilationH: Int, dilationW: Int
    public var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    /// Channel groups (convolution only): input and output channels split into this many
    /// independent blocks; `groups == channels` is depthwise.
    public var groups: Int

    public init(kernel: (Int, Int), strides: (Int, Int) = (1, 1), dilations: (Int, Int) = (1, 1),
                pads: (top: Int, left: Int, bottom: Int, right: Int) = (0, 0, 0, 0), groups: Int = 1) {
        kernelH = kernel.0; kernelW = kernel.1
        strideH = strides.0; strideW = strides.1
        dilationH = dilations.0; dilationW = dilations.1
        padTop = pads.top; padLeft = pads.left; padBottom = pads.bottom; padRight = pads.right
        self.groups = groups
    }

    /// Checks sizes are positive and paddings non-negative.
    public func validate(op: String) throws {
        guard kernelH > 0, kernelW > 0, strideH > 0, strideW > 0, dilationH > 0, dilationW > 0, groups > 0 else {
            throw TensorError.invalidArgument(op: op, message: "kernel, strides, dilations and group must be positive (\(self))")
        }
        guard padTop >= 0, padLeft >= 0, padBottom >= 0, padRight >= 0 else {
            throw TensorError.invalidArgument(op: op, message: "pads must be non-negative (\(self))")
        }
        // Attributes come from model files; bounding them keeps every size computation below
        // from overflowing (no real window, stride or padding comes near 2^20).
        let limit = 1 << 20
        guard [kernelH, kernelW, strideH, strideW, dilationH, dilationW, padTop, padLeft, padBottom, padRight, groups]
            .allSatisfy({ $0 <= limit }) else {
            throw TensorError.invalidArgument(op: op, message: "kernel, strides, dilations, pads and group must be at most \(limit) (\(self))")
        }
    }

    /// Output size along one axis. `ceilMode` rounds up as ONNX pooling does, dropping a last
    /// window that would start inside the end padding (PyTorch's rule, which onnxruntime follows).
    public static func outputLength(input: Int, kernel: Int, stride: Int, dilation: Int, padBegin: Int, padEnd: Int,
                             ceilMode: Bool) -> Int {
        let span = dilation * (kernel - 1) + 1
        let room = input + padBegin + padEnd - span
        if room < 0 { return 0 }
        var out = (ceilMode ? (room + stride - 1) / stride : room / stride) + 1
        if ceilMode && (out - 1) * stride >= input + padBegin { out -= 1 }
        return out
    }

    /// Output height and width for an input plane of `height` × `width`; throws if empty.
    public func outputSize(height: Int, width: Int, ceilMode: Bool = false, op: String) throws -> (Int, Int) {
        let oh = Self.outputLength(input: height, kernel: kernelH, stride: strideH, dilation: dilationH,
                                   padBegin: padTop, padEnd: padBottom, ceilMode: ceilMode)
        let ow = Self.outputLength(input: width, kernel: kernelW, stride: strideW, dilation: dilationW,
                                   padBegin: padLeft, padEnd: padRight, ceilMode: ceilMode)
        guard oh > 0, ow > 0 else {
            throw TensorError.invalidArgument(op: op, message: "window \(kernelH)x\(kernelW) (dilation \(dilationH)x\(dilationW)) does not fit the padded input \(height)x\(width)")
        }
        _ = try Shape.checkedCount([oh, ow], op: op)
        return (oh, ow)
    }

    func window(inH: Int, inW: Int, outH: Int, outW: Int) -> loupe_window2d {
        loupe_window2d(inH: inH, inW: inW, outH: outH, outW: outW, kH: kernelH, kW: kernelW, strideH: strideH,
                       strideW: strideW, padTop: padTop, padLeft: padLeft, dilH: dilationH, dilW: dilationW)
    }

    /// True for an ungrouped 3×3, stride-1, undilated window: the shape Winograd F(4×4, 3×3) takes.
    var isWinogradShape: Bool {
        kernelH == 3 && kernelW == 3 && strideH == 1 && strideW == 1 && dilationH == 1 && dilationW == 1 && groups == 1
    }

    /// True when the window is a plain 1×1 product (no im2col needed).
    var isPointwise: Bool {
        kernelH == 1 && kernelW == 1 && strideH == 1 && strideW == 1 && padTop == 0 && padLeft == 0
            && padBottom == 0 && padRight == 0
    }
}
