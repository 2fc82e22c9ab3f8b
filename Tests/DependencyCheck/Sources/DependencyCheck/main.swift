import Loupe
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

// A 2x3 · 3x2 product through Loupe's public API, checked against hand-computed values.
let a = try Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
let b = try Tensor(shape: [3, 2], floats: [7, 8, 9, 10, 11, 12])
let c = try a.matmul(b)
let expected: [Float] = [58, 64, 139, 154]
guard try c.floats() == expected else {
    print("DependencyCheck: wrong product \(c)")
    exit(1)
}
print("DependencyCheck: Loupe builds as a URL dependency; matmul = \(try c.floats()), GEMM level \(Kernels.gemmLevel)")
