import CLoupeKernels
import XCTest
@testable import LoupeTensor

/// The Winograd sign guard: its bound holds with margin on varied data, and after the repair every
/// pre-activation has the sign of the exact (float64) convolution, even where the values were
/// built to sit within rounding of zero — where the unrepaired Winograd output, and a float
/// direct sum, get signs wrong.
final class WinogradSignGuardTests: XCTestCase {
    override func tearDown() { loupe_winograd_set_guarded(-1) }

    /// The convolution in float64, stride 1, 3×3, pads 1: (N, C, H, W) → (N, M, H, W).
    private func exactConv(_ x: [Float], _ w: [Float], _ b: [Float], n: Int, c: Int, m: Int, h: Int, wd: Int) -> [Double] {
        var y = [Double](repeating: 0, count: n * m * h * wd)
        for img in 0..<n { for o in 0..<m { for oy in 0..<h { for ox in 0..<wd {
            var acc = Double(b[o])
            for ci in 0..<c { for kh in 0..<3 { for kw in 0..<3 {
                let iy = oy - 1 + kh, ix = ox - 1 + kw
                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                acc += Double(w[((o * c + ci) * 3 + kh) * 3 + kw]) * Double(x[((img * c + ci) * h + iy) * wd + ix])
            } } }
            y[((img * m + o) * h + oy) * wd + ox] = acc
        } } } }
        return y
    }

    /// Elements whose sign differs from the exact value's (exact zeros skipped).
    private func signMismatches(_ y: [Float], _ exact: [Double]) -> Int {
        zip(y, exact).filter { $1 != 0 && (($0 > 0) != ($1 > 0)) }.count
    }

    private let geometry = ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))

    /// Spatially constant channels and each bias the negated exact sum: every interior output is
    /// a rounding residual of the bias, within Winograd's error of zero.
    private func cancellingConv(n: Int, c: Int, m: Int, h: Int, seed: UInt64) throws -> (x: Tensor, w: Tensor, b: Tensor, exact: [Double]) {
        var rng = KernelRNG(seed: seed)
        let level = (0..<c).map { _ in 1 + rng.uniform() }
        let xs = (0..<n * c * h * h).map { level[($0 / (h * h)) % c] }
        let ws = rng.floats(m * c * 9)
        let bs = (0..<m).map { o -> Float in
            var s = 0.0
            for ci in 0..<c { for k in 0..<9 { s += Double(ws[(o * c + ci) * 9 + k]) * Double(level[ci]) } }
            return Float(-s)
        }
        return (try Tensor(shape: [n, c, h, h], floats: xs), try Tensor(shape: [m, c, 3, 3], floats: ws),
                try Tensor(shape: [m], floats: bs), exactConv(xs, ws, bs, n: n, c: c, m: m, h: h, wd: h))
    }

    func testRepairGivesTheExactSignsWhereValuesCancel() throws {
        guard loupe_gemm_level() == 2 else { return } // no Winograd, so no guard, off AVX-512
        let (x, w, b, exact) = try cancellingConv(n: 2, c: 16, m: 12, h: 20, seed: 3)
        let packed = try PackedConvWeights(weight: w, groups: 1)
        let (y, guardian) = try Kernels.conv2dGuarded(x, weight: w, bias: b, geometry: geometry, packed: packed, activation: .none)
        let g = try XCTUnwrap(guardian, "this shape takes guarded Winograd")
        let raw = try y.floats()
        XCTAssertGreaterThan(signMismatches(raw, exact), 10, "the construction puts Winograd's own signs in doubt")
        var repaired = y
        let count = try g.repair(&repaired)
        XCTAssertGreaterThan(count, 2 * 12 * 18 * 18 / 2, "most interior outputs are within the bound of zero")
        XCTAssertEqual(signMismatches(try repaired.floats(), exact), 0)
        // The fused ReLU: the output is max(0, ·) of the repaired values.
        let (r, none) = try Kernels.conv2dGuarded(x, weight: w, bias: b, geometry: geometry, packed: packed, activation: .relu)
        XCTAssertNil(none)
        XCTAssertEqual(try r.floats(), try repaired.floats().map { max($0, 0) })
        // Off, a recorded pass's direct float sum rounds too: its signs are not the exact ones either.
        loupe_winograd_set_guarded(0)
        let (d, off) = try Kernels.withDirectConvolutions {
            try Kernels.conv2dGuarded(x, weight: w, bias: b, geometry: geometry, packed: packed, activation: .none)
        }
        XCTAssertNil(off)
        XCTAssertGreaterThan(signMismatches(try d.floats(), exact), 10)
    }

    /// Conv(x) + r with r the negated exact output (rounded): the sum's signs after the repair
    /// of the sum are those of exact + r.
    func testRepairOfASumGivesTheExactSigns() throws {
        guard loupe_gemm_level() == 2 else { return }
        var rng = KernelRNG(seed: 9)
        let (n, c, m, h) = (1, 24, 16, 16)
        let x = try rng.tensor([n, c, h, h]), w = try rng.tensor([m, c, 3, 3]), b = try rng.tensor([m])
        let exact = exactConv(try x.floats(), try w.floats(), try b.floats(), n: n, c: c, m: m, h: h, wd: h)
        let r = exact.map { Float(-$0) }
        let residual = zip(exact, r).map { $0 + Double($1) }
        let (y, guardian) = try Kernels.conv2dGuarded(x, weight: w, bias: b, geometry: geometry,
                                                      packed: try PackedConvWeights(weight: w, groups: 1), activation: .none)
        let g = try XCTUnwrap(guardian)
        var sum = try Tensor.binary(.add, y, try Tensor(shape: y.shape, floats: r))
        XCTAssertGreaterThan(signMismatches(try sum.floats(), residual), 10)
        try g.repair(&sum)
        XCTAssertEqual(signMismatches(try sum.floats(), residual), 0)
        // Two guarded terms summed: the bound and the corrections add.
        let both = g.adding(g)
        var twice = try Tensor.binary(.add, y, y)
        let twiceExact = exact.map { 2 * $0 }
        try both.repair(&twice)
        XCTAssertEqual(signMismatches(try twice.floats(), twiceExact), 0)
        var wrong = try Tensor(shape: [1, 2, 3, 4], floats: Array(repeating: 0, count: 24))
        XCTAssertThrowsError(try g.repair(&wrong), "values of another shape")
    }

    /// |Winograd − exact| stays far inside the bound (at most 1/4 of it; about 1/10 was the worst
    /// seen) on uniform, post-ReLU and heavy-tailed inputs from 16 to 512 channels.
    func testBoundHoldsWithMargin() throws {
        guard loupe_gemm_level() == 2 else { return }
        var rng = KernelRNG(seed: 7)
        for (c, hw, kind) in [(16, 20, 0), (64, 16, 1), (256, 12, 1), (512, 8, 2)] {
            let n = 2, m = 9
            var xs = rng.floats(n * c * hw * hw)
            if kind >= 1 { xs = xs.map { v in max(0, v) * (kind == 2 ? Float(exp(Double(v) * 4)) : 1) } }
            let x = try Tensor(shape: [n, c, hw, hw], floats: xs)
            let w = try rng.tensor([m, c, 3, 3]), b = try rng.tensor([m])
            let (y, guardian) = try Kernels.conv2dGuarded(x, weight: w, bias: b, geometry: geometry,
                                                          packed: try PackedConvWeights(weight: w, groups: 1), activation: .none)
            let term = try XCTUnwrap(guardian?.terms.first)
            let exact = exactConv(xs, try w.floats(), try b.floats(), n: n, c: c, m: m, h: hw, wd: hw)
            let yv = try y.floats()
            var worst = 0.0
            for img in 0..<n { for ch in 0..<m { for oy in 0..<hw { for ox in 0..<hw {
                let i = ((img * m + ch) * hw + oy) * hw + ox
                let tiles = term.tilesH * term.tilesW
                let tol = Double(term.tolerance[ch * n * tiles + img * tiles + (oy / 4) * term.tilesW + ox / 4])
                worst = max(worst, abs(Double(yv[i]) - exact[i]) / tol)
            } } } }
            XCTAssertLessThan(worst, 0.25, "C \(c) kind \(kind)")
            XCTAssertGreaterThan(worst, 0, "C \(c): Winograd rounds")
        }
    }
}
