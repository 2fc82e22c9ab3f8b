import XCTest
@testable import LoupeTensor

/// Asserts element-wise closeness: |a − e| ≤ atol + rtol·|e| (NaN matches NaN).
func assertClose(_ actual: Tensor, _ expected: [Double], shape: [Int]? = nil, atol: Double = 1e-5, rtol: Double = 1e-5,
                 _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    if let shape { XCTAssertEqual(actual.shape, shape, "shape \(message)", file: file, line: line) }
    let a = actual.doubles
    XCTAssertEqual(a.count, expected.count, "count \(message)", file: file, line: line)
    for (i, (x, e)) in zip(a, expected).enumerated() {
        if e.isNaN { XCTAssertTrue(x.isNaN, "[\(i)] \(x) vs NaN \(message)", file: file, line: line); continue }
        if e.isInfinite { XCTAssertEqual(x, e, "[\(i)] \(message)", file: file, line: line); continue }
        XCTAssertLessThanOrEqual(abs(x - e), atol + rtol * abs(e), "[\(i)] \(x) vs \(e) \(message)", file: file, line: line)
    }
}

/// Slow, obviously-correct broadcast: the element of `t` (shape right-aligned to `out`) at the
/// output multi-index of flat position `flat`.
func naiveBroadcastIndex(_ flat: Int, out: [Int], operand: [Int]) -> Int {
    var rem = flat
    var idx = [Int](repeating: 0, count: out.count)
    for d in stride(from: out.count - 1, through: 0, by: -1) {
        idx[d] = rem % out[d]
        rem /= out[d]
    }
    var k = 0
    for (i, s) in operand.enumerated() {
        let d = out.count - operand.count + i
        k = k * s + (s == 1 ? 0 : idx[d])
    }
    return k
}

/// Deterministic floats for kernel tests.
func sampleFloats(_ n: Int, seed: Int = 1) -> [Float] {
    (0..<n).map { Float((($0 + seed) * 37 + seed * 11) % 23) / 7 - 1.5 }
}
