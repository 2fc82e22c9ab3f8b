import CLoupeKernels

/// Depthwise convolution (group == C, one input channel per group): a direct sliding-window
/// kernel instead of im2col + GEMM, whose K = kH·kW is far too small to pay for packing. The C
/// side (window_simd.c) pads each plane once into scratch memory and runs an AVX-512/AVX2
/// correlation along output rows; it parallelises over channel planes itself.
extension Kernels {
    /// y (N, M, outH, outW) from x (N, C, H, W), weight (M, 1, kH, kW), optional bias (M).
    /// `activation` is applied to each plane as soon as it is computed.
    static func depthwiseForward(_ x0: UnsafePointer<Float>, _ w0: UnsafePointer<Float>, _ bias: [Float]?,
                                 _ s: ConvShapes, _ win: loupe_window2d, _ y0: UnsafeMutablePointer<Float>,
                                 activation: ConvActivation = .none) {
        var wv = win
        if let bias {
            bias.withUnsafeBufferPointer { b in
                loupe_depthwise_forward(x0, w0, b.baseAddress, s.n, s.c, s.mg, &wv, activation.code, y0)
            }
        } else {
            loupe_depthwise_forward(x0, w0, nil, s.n, s.c, s.mg, &wv, activation.code, y0)
        }
    }

    /// Input gradient gx (N, C, H, W), zero-initialised by the caller, from gy (N, M, outH, outW).
    static func depthwiseBackwardInput(_ gy0: UnsafePointer<Float>, _ w0: UnsafePointer<Float>, _ s: ConvShapes,
                                       _ win: loupe_window2d, _ gx0: UnsafeMutablePointer<Float>) {
        var wv = win
        loupe_depthwise_backward_input(gy0, w0, s.n, s.c, s.mg, &wv, gx0)
    }

    /// Weight gradient gw (M, 1, kH, kW), zero-initialised by the caller, summed over images.
    static func depthwiseBackwardWeight(_ gy0: UnsafePointer<Float>, _ x0: UnsafePointer<Float>, _ s: ConvShapes,
                                        _ win: loupe_window2d, _ gw0: UnsafeMutablePointer<Float>) {
        var wv = win
        loupe_depthwise_backward_weight(gy0, x0, s.n, s.c, s.mg, &wv, gw0)
    }

    /// SIMD level of the depthwise and global-pooling kernels (``cpuLevel`` unless forced lower).
    public static var windowLevel: Int { Int(loupe_window_level()) }

    /// Forces the depthwise and global-pooling kernels onto a lower path (0 portable, 1 AVX2,
    /// 2 AVX-512), or back to automatic with nil. For tests and benchmarks; not thread-safe
    /// against concurrent kernel calls.
    public static func forceWindowLevel(_ level: Int?) { loupe_window_force_level(Int32(level ?? -1)) }

    /// Forces the depthwise forward onto one kernel: `false` the plane-at-a-time kernels,
    /// `true` the 16-channel-blocked one wherever it can run (AVX-512, one output channel per
    /// input channel), nil automatic (blocked for small planes). For tests and A/B timing; not
    /// thread-safe against concurrent kernel calls.
    public static func forceChannelBlockedDepthwise(_ on: Bool?) {
        loupe_depthwise_force_path(on.map { $0 ? 1 : 0 } ?? -1)
    }

    /// The previous scalar depthwise kernels, one plane per task: kept as the A/B baseline for
    /// benchmarks and as a second reference in tests.
    static func depthwiseForwardScalar(_ x0: UnsafePointer<Float>, _ w0: UnsafePointer<Float>, _ bias: [Float]?,
                                       _ s: ConvShapes, _ win: loupe_window2d, _ y0: UnsafeMutablePointer<Float>) {
        parallelFor(s.n * s.m) { t in
            let img = t / s.m, m = t % s.m, c = m / s.mg
            var wv = win
            loupe_depthwise_plane(x0 + (img * s.c + c) * s.h * s.w, w0 + m * s.kk, bias?[m] ?? 0, &wv,
                                  y0 + t * s.plane)
        }
    }

    static func depthwiseBackwardInputScalar(_ gy0: UnsafePointer<Float>, _ w0: UnsafePointer<Float>, _ s: ConvShapes,
                                             _ win: loupe_window2d, _ gx0: UnsafeMutablePointer<Float>) {
        parallelFor(s.n * s.c) { t in
            let img = t / s.c, c = t % s.c
            var wv = win
            for m in (c * s.mg)..<((c + 1) * s.mg) {
                loupe_depthwise_plane_grad_input(gy0 + (img * s.m + m) * s.plane, w0 + m * s.kk, &wv,
                                                 gx0 + t * s.h * s.w)
            }
        }
    }

    static func depthwiseBackwardWeightScalar(_ gy0: UnsafePointer<Float>, _ x0: UnsafePointer<Float>, _ s: ConvShapes,
                                              _ win: loupe_window2d, _ gw0: UnsafeMutablePointer<Float>) {
        parallelFor(s.m) { m in
            let c = m / s.mg
            var wv = win
            for img in 0..<s.n {
                loupe_depthwise_plane_grad_weight(gy0 + (img * s.m + m) * s.plane, x0 + (img * s.c + c) * s.h * s.w,
                                                  &wv, gw0 + m * s.kk)
            }
        }
    }
}
