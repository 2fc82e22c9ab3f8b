import Foundation
import LoupeTensor

/// A small seeded generator (SplitMix64) for the draws of noise and sampling methods, so a run
/// is reproducible from its seed. Tests that compare with Captum pass the draws explicitly.
struct ExplainRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Standard normal (Box–Muller).
    mutating func normal() -> Double {
        let u1 = max(uniform(), 0x1p-53), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// Uniform integer in 0..<n.
    mutating func index(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// `stdev` × standard normal draws into `out`, reproducibly from `seed` whatever the thread
    /// count: blocks of 16384 draws each take their own stream (SplitMix64 seeded from `seed`
    /// and the block index) and run over the pool; Box–Muller pairs give two draws per log
    /// (the cosine and the sine branch), half the transcendental work of ``normal()``.
    static func fillNormal(_ out: UnsafeMutableBufferPointer<Float>, stdev: Float, seed: UInt64) {
        let block = 16384, n = out.count
        guard let base = out.baseAddress, n > 0 else { return }
        let blocks = (n + block - 1) / block
        Kernels.parallelFor(blocks) { b in
            var rng = ExplainRNG(seed: seed ^ (UInt64(b) &* 0xD1B5_4A32_D192_ED03))
            _ = rng.next()
            let lo = b * block, hi = min(n, lo + block)
            var i = lo
            while i < hi {
                let u1 = max(rng.uniform(), 0x1p-53), u2 = rng.uniform()
                let r = (-2 * log(u1)).squareRoot(), t = 2 * Double.pi * u2
                base[i] = stdev * Float(r * cos(t))
                if i + 1 < hi { base[i + 1] = stdev * Float(r * sin(t)) }
                i += 2
            }
        }
    }
}
