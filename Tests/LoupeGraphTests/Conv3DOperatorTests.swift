import XCTest
import LoupeTensor
@testable import LoupeGraph

/// Conv over (N, C, T, H, W) as frame-wise 2-D convolutions: values against a direct loop,
/// VJP against finite differences, with temporal stride, dilation, padding and groups.
final class Conv3DOperatorTests: XCTestCase {
    /// Direct 3-D cross-correlation (the definition).
    private func reference(_ x: [Float], _ xs: [Int], _ w: [Float], _ ws: [Int], _ b: [Float], stride s: [Int], dilation d: [Int],
                           pads p: [Int], groups: Int) -> ([Float], [Int]) {
        let n = xs[0], c = xs[1], t = xs[2], h = xs[3], wd = xs[4]
        let m = ws[0], cg = ws[1], kt = ws[2], kh = ws[3], kw = ws[4]
        var o: [Int] = []
        for i in 0..<3 {
            let span: Int = (ws[2 + i] - 1) * d[i] + 1
            let padded: Int = xs[2 + i] + p[i] + p[3 + i]
            o.append((padded - span) / s[i] + 1)
        }
        var y = [Float](repeating: 0, count: n * m * o[0] * o[1] * o[2])
        let mg = m / groups
        for bi in 0..<n { for mo in 0..<m {
            let g: Int = mo / mg
            for a in 0..<o[0] { for bb in 0..<o[1] { for cc in 0..<o[2] {
                var acc: Float = b[mo]
                for ci in 0..<cg { for i in 0..<kt { for j in 0..<kh { for k in 0..<kw {
                    let ti: Int = a * s[0] - p[0] + i * d[0]
                    let hi: Int = bb * s[1] - p[1] + j * d[1]
                    let wi: Int = cc * s[2] - p[2] + k * d[2]
                    guard ti >= 0, ti < t, hi >= 0, hi < h, wi >= 0, wi < wd else { continue }
                    let xi: Int = (((bi * c + g * cg + ci) * t + ti) * h + hi) * wd + wi
                    let wix: Int = (((mo * cg + ci) * kt + i) * kh + j) * kw + k
                    acc += x[xi] * w[wix]
                } } } }
                let yi: Int = (((bi * m + mo) * o[0] + a) * o[1] + bb) * o[2] + cc
                y[yi] = acc
            } } }
        } }
        return (y, [n, m] + o)
    }

    func testValuesAndGradients() throws {
        var rng = TestRNG(seed: 21)
        for (s, d, p, groups) in [([1, 1, 1], [1, 1, 1], [1, 1, 1, 1, 1, 1], 1), ([2, 1, 2], [2, 1, 1], [0, 1, 0, 1, 0, 1], 2)] {
            let x = rng.tensor([2, 4, 5, 4, 5]), w = rng.tensor([4, 4 / groups, 2, 3, 2]), b = rng.tensor([4])
            let op = try makeOperator("Conv", inputs: 3, attributes: ["strides": .ints(s), "dilations": .ints(d), "pads": .ints(p),
                                                                       "group": .int(groups), "kernel_shape": .ints([2, 3, 2])])
            let y = try op.forward([x, w, b])[0]
            let (want, shape) = reference(try x.floats(), x.shape, try w.floats(), w.shape, try b.floats(), stride: s, dilation: d,
                                          pads: p, groups: groups)
            XCTAssertEqual(y.shape, shape)
            for (u, v) in zip(try y.floats(), want) { XCTAssertEqual(u, v, accuracy: 1e-4) }
            try checkVJP(op, [x, w, b], wrt: [0, 1, 2], eps: 1e-2, rtol: 1e-2, atol: 1e-3)
        }
    }

    /// An empty batch gives an empty output for the 3-D conv and pools, not a crash.
    func testEmptyBatch() throws {
        var rng = TestRNG(seed: 3)
        let x = Tensor(zeros: [0, 2, 4, 4, 4])
        let conv = try makeOperator("Conv", inputs: 2, attributes: ["kernel_shape": .ints([2, 2, 2])])
        XCTAssertEqual(try conv.forward([x, rng.tensor([3, 2, 2, 2, 2])])[0].shape, [0, 3, 3, 3, 3])
        for op in ["MaxPool", "AveragePool"] {
            let pool = try makeOperator(op, inputs: 1, attributes: ["kernel_shape": .ints([2, 2, 2])])
            XCTAssertEqual(try pool.forward([x])[0].shape, [0, 2, 3, 3, 3], op)
        }
    }

    func testTemporalKernelLongerThanInputIsNamed() throws {
        var rng = TestRNG(seed: 2)
        let op = try makeOperator("Conv", inputs: 2, attributes: ["kernel_shape": .ints([4, 1, 1])])
        XCTAssertThrowsError(try op.forward([rng.tensor([1, 1, 3, 2, 2]), rng.tensor([1, 1, 4, 1, 1])])) { e in
            XCTAssertTrue("\(e)".contains("temporal window"), "\(e)")
        }
    }
}
