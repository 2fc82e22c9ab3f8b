import Foundation

/// How a path integral `∫₀¹ g(α) dα` is approximated by `Σ_k w_k g(α_k)`: the points and weights
/// of Captum's `approximation_methods` (Captum 0.9.0), so Loupe's Integrated Gradients uses the
/// same samples as Captum's for the same `steps`.
public enum IntegrationRule: String, Sendable, CaseIterable {
    /// α_k = k/n, k = 0…n−1; w = 1/n.
    case riemannLeft = "riemann_left"
    /// α_k = (k+1)/n; w = 1/n.
    case riemannRight = "riemann_right"
    /// α_k = (k+½)/n; w = 1/n.
    case riemannMiddle = "riemann_middle"
    /// α_k = k/(n−1); w = 1/n, halved at both ends (Captum's weights, which sum to (n−1)/n).
    case riemannTrapezoid = "riemann_trapezoid"
    /// Gauss–Legendre nodes and weights on [−1, 1] (numpy's `leggauss`) mapped to [0, 1]:
    /// α = (1 + x)/2, w = w_GL/2. Captum's default.
    case gaussLegendre = "gausslegendre"

    /// Points α_k (ascending) and weights w_k for `n` steps.
    ///
    /// Riemann points are computed as `torch.linspace` does in float32 (Captum calls it), so
    /// they equal Captum's to the bit in the common cases and to 1 ulp otherwise.
    public func points(_ n: Int) throws -> (alphas: [Double], weights: [Double]) {
        let minimum = self == .gaussLegendre ? 1 : 2
        guard n >= minimum else {
            throw ExplainError.invalidArgument(method: "IntegrationRule.\(rawValue)", message: "needs at least \(minimum) steps, got \(n)")
        }
        let d = Double(n)
        switch self {
        case .riemannLeft: return (Self.linspace(0, 1 - 1 / d, n), Array(repeating: 1 / d, count: n))
        case .riemannRight: return (Self.linspace(1 / d, 1, n), Array(repeating: 1 / d, count: n))
        case .riemannMiddle: return (Self.linspace(1 / (2 * d), 1 - 1 / (2 * d), n), Array(repeating: 1 / d, count: n))
        case .riemannTrapezoid:
            var w = Array(repeating: 1 / d, count: n)
            w[0] /= 2
            w[n - 1] /= 2
            return (Self.linspace(0, 1, n), w)
        case .gaussLegendre:
            let (x, w) = Self.legendreGauss(n)
            return (x.map { 0.5 * (1 + $0) }, w.map { 0.5 * $0 })
        }
    }

    /// `torch.linspace(start, end, n)` in float32: the first half counts up from `start`, the
    /// second half down from `end`, by a float32 step.
    static func linspace(_ start: Double, _ end: Double, _ n: Int) -> [Double] {
        let s = Float(start), e = Float(end)
        guard n > 1 else { return [Double(s)] }
        let step = (e - s) / Float(n - 1)
        let half = n / 2
        return (0..<n).map { i in
            i < half ? Double(s + step * Float(i)) : Double(e - step * Float(n - 1 - i))
        }
    }

    /// Gauss–Legendre nodes (ascending) and weights on [−1, 1], by Newton's method on the
    /// Legendre polynomial P_n from Chebyshev-like starting points, in double precision.
    static func legendreGauss(_ n: Int) -> ([Double], [Double]) {
        var x = [Double](repeating: 0, count: n), w = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var z = cos(Double.pi * (Double(i) + 0.75) / (Double(n) + 0.5))
            var dp = 0.0
            for _ in 0..<100 {
                // Recurrence k P_k = (2k − 1) z P_{k−1} − (k − 1) P_{k−2}; ends with
                // p1 = P_n(z), p0 = P_{n−1}(z).
                var p0 = 1.0, p1 = z
                if n >= 2 {
                    for k in 2...n {
                        let pk = ((2 * Double(k) - 1) * z * p1 - (Double(k) - 1) * p0) / Double(k)
                        p0 = p1
                        p1 = pk
                    }
                }
                let pn = p1
                // P_n'(z) = n (z P_n − P_{n−1}) / (z² − 1)
                dp = Double(n) * (z * pn - p0) / (z * z - 1)
                let dz = pn / dp
                z -= dz
                if abs(dz) < 1e-16 { break }
            }
            x[n - 1 - i] = z
            w[n - 1 - i] = 2 / ((1 - z * z) * dp * dp)
        }
        return (x, w)
    }
}
