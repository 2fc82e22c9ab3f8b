import XCTest
import LoupeTensor
@testable import LoupeGraph

/// Deterministic pseudo-random numbers for tests (SplitMix64), so failures reproduce.
struct TestRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    mutating func uniform(_ lo: Float = -1, _ hi: Float = 1) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }
    mutating func tensor(_ shape: [Int], _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
        let n = shape.reduce(1, *)
        return try! Tensor(shape: shape, floats: (0..<n).map { _ in uniform(lo, hi) })
    }
}

/// Builds an operator from a node description the way model compilation does.
func makeOperator(_ opType: String, inputs: Int, outputs: Int = 1, attributes: [String: Attribute] = [:],
                  opset: Int = 17, constants: [Tensor?] = []) throws -> any Operator {
    let node = Node(name: "test_\(opType)", opType: opType, inputs: (0..<inputs).map { "x\($0)" },
                    outputs: (0..<outputs).map { "y\($0)" }, attributes: attributes)
    guard let factory = OperatorTable.factory(opType: opType, domain: "") else {
        throw GraphError.invalid("no operator \(opType)")
    }
    var c = constants
    while c.count < inputs { c.append(nil) }
    return try factory(OperatorContext(node: node, opset: opset, constantInputs: c))
}

/// Checks an operator's VJP against central finite differences of L = Σ_j ⟨g_j, y_j⟩ with
/// random cotangents g_j, for every float input listed in `wrt`.
///
/// Tolerance: |analytic − numeric| ≤ atol + rtol·max|numeric| over the checked entries. With
/// float32 forward passes and eps = 1e-2, truncation error is O(eps²·f''') and rounding about
/// 1e-7·|L|/eps, so rtol ≈ 1e-2 separates a right VJP from a wrong one by orders of magnitude.
func checkVJP(_ op: any Operator, _ inputs: [Tensor?], wrt: [Int], eps: Float = 1e-2, rtol: Double = 2e-2,
              atol: Double = 1e-3, maxEntries: Int = 48, seed: UInt64 = 7,
              file: StaticString = #filePath, line: UInt = #line) throws {
    var rng = TestRNG(seed: seed)
    let outs = try op.forward(inputs)
    let cot = outs.map { o -> Tensor? in o.dtype == .float32 ? rng.tensor(o.shape) : nil }
    func objective(_ xs: [Tensor?]) throws -> Double {
        let ys = try op.forward(xs)
        var s = 0.0
        for (y, g) in zip(ys, cot) {
            guard let g else { continue }
            let a = try y.floats(), b = try g.floats()
            for i in 0..<a.count { s += Double(a[i]) * Double(b[i]) }
        }
        return s
    }
    let needs = op.backwardNeeds
    var keptIn = inputs.map { _ -> Tensor? in nil }
    for i in needs.inputs where i < inputs.count { keptIn[i] = inputs[i] }
    var keptOut = outs.map { Optional($0) }.map { _ -> Tensor? in nil }
    for i in needs.outputs where i < outs.count { keptOut[i] = outs[i] }
    let want = (0..<inputs.count).map { wrt.contains($0) }
    let ctx = VJPContext(inputs: keptIn, inputShapes: inputs.map { $0?.shape }, outputs: keptOut, gradOutputs: cot, wantInput: want)
    let grads = try op.vjp(ctx)
    for i in wrt {
        guard let x = inputs[i] else { continue }
        guard i < grads.count, let g = grads[i] else {
            XCTFail("no gradient for input \(i)", file: file, line: line); continue
        }
        XCTAssertEqual(g.shape, x.shape, "gradient shape of input \(i)", file: file, line: line)
        let ga = try g.floats()
        var xv = try x.floats()
        let idx: [Int] = xv.count <= maxEntries ? Array(0..<xv.count) : (0..<maxEntries).map { _ in Int(rng.next() % UInt64(xv.count)) }
        var numeric: [Double] = [], analytic: [Double] = []
        for k in idx {
            let orig = xv[k]
            var xs = inputs
            xv[k] = orig + eps; xs[i] = try Tensor(shape: x.shape, floats: xv)
            let lp = try objective(xs)
            xv[k] = orig - eps; xs[i] = try Tensor(shape: x.shape, floats: xv)
            let lm = try objective(xs)
            xv[k] = orig
            numeric.append((lp - lm) / (2 * Double(eps)))
            analytic.append(Double(ga[k]))
        }
        let scale = numeric.map(abs).max() ?? 0
        for (n, a) in zip(numeric, analytic) {
            XCTAssertLessThanOrEqual(abs(n - a), atol + rtol * scale,
                                     "input \(i): analytic \(a) vs numeric \(n)", file: file, line: line)
        }
    }
}
