import CLoupeKernels

extension Kernels {
    /// SIMD level the vector math, broadcast arithmetic, softmax and row-normalisation kernels
    /// (CLoupeVMath.h) use: 0 = portable, 1 = AVX2+FMA, 2 = AVX-512F. The finiteness check,
    /// extrema, bilinear row blend and Eigen-CAM's centring and tridiagonalisation follow it too
    /// (they have an AVX-512 and a portable path).
    public static var vectorMathLevel: Int { Int(loupe_vmath_level()) }

    /// Forces those kernels onto a lower path (0, 1, 2), or back to automatic with nil. Levels
    /// above what the CPU supports are ignored. For tests and benchmarks; not thread-safe
    /// against concurrent kernel calls.
    public static func forceVectorMathLevel(_ level: Int?) { loupe_vmath_force_level(Int32(level ?? -1)) }

    /// When true, element-wise unary/binary ops, their derivatives, softmax and row
    /// normalisation run the previous scalar Swift loops instead of the vector kernels: the
    /// "old" side of in-process A/B benchmarks. Default false. Not thread-safe against
    /// concurrent kernel calls.
    public static var scalarElementwiseReference: Bool {
        get { loupe_vmath_reference() != 0 }
        set { loupe_vmath_use_reference(newValue ? 1 : 0) }
    }
}
