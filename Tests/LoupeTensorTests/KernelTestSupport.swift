import XCTest
@testable import LoupeTensor

/// Deterministic SplitMix64 numbers for the kernel tests.
struct KernelRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Float { -1 + 2 * Float(next() >> 40) / Float(1 << 24) }
    mutating func floats(_ n: Int) -> [Float] { (0..<n).map { _ in uniform() } }
    mutating func tensor(_ shape: [Int]) throws -> Tensor { try Tensor(shape: shape, floats: floats(shape.reduce(1, *))) }
}

/// Asserts two tensors have the same shape and elements within atol + rtol·|expected|.
func assertKernelClose(_ a: Tensor, _ b: Tensor, atol: Float = 1e-4, rtol: Float = 1e-4, _ message: String = "",
                 file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(a.shape, b.shape, "shape \(message)", file: file, line: line)
    guard a.shape == b.shape else { return }
    let x = try a.floats(), y = try b.floats()
    var worst: Float = 0, at = -1
    for i in 0..<x.count {
        let err = abs(x[i] - y[i]) - (atol + rtol * abs(y[i]))
        if err > worst || !(x[i] == y[i] || err <= 0) { worst = max(worst, err.isNaN ? .infinity : err); at = i }
    }
    XCTAssertEqual(at, -1, "\(message): element \(at) differs: \(at >= 0 ? x[at] : 0) vs \(at >= 0 ? y[at] : 0)", file: file, line: line)
}

/// Σ a·b in Double (for adjoint identities).
func kernelDot(_ a: Tensor, _ b: Tensor) throws -> Double {
    let x = try a.floats(), y = try b.floats()
    precondition(x.count == y.count)
    var s = 0.0
    for i in 0..<x.count { s += Double(x[i]) * Double(y[i]) }
    return s
}
