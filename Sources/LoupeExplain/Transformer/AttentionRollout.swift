import LoupeGraph
import LoupeTensor

/// How the heads of one layer's attention (B, H, T, T) become one (B, T, T) matrix.
public enum HeadFusion: String, Sendable, CaseIterable {
    /// The mean over heads (Abnar & Zuidema 2020; vit-explain's default).
    case mean
    /// The element-wise maximum over heads.
    case max
    /// The element-wise minimum over heads.
    case min
}

/// Relevance of the input tokens for one output token, from attention alone.
public struct AttentionRelevance: Sendable {
    /// (B, h, w): the patch tokens' relevance on the patch grid (row-major, as ViTs flatten patches).
    public var map: Tensor
    /// (B, T − prefixTokens): the same values, one per patch token.
    public var tokens: Tensor
    /// Rollout: the whole product (B, T, T), row i = token i at the top over the input tokens.
    /// Flow: (B, T), the max-flow into the output token from every input token (prefix included).
    public var full: Tensor
    /// The attention values used, one per layer, bottom first.
    public var attentionNames: [String]
}

/// Options shared by ``AttentionRollout`` and ``AttentionFlow``.
public struct AttentionSettings: Sendable {
    /// Attention probability values (B, H, T, T) in layer order, bottom first; nil: found by
    /// ``AttentionMaps/candidates(in:)`` (every Softmax feeding a MatMul whose output is (B, H, T, T)).
    public var attentionNames: [String]?
    public var headFusion: HeadFusion
    /// vit-explain's `discard_ratio`: before adding the identity, the `Int(T·T·ratio)` smallest
    /// entries of each sample's fused matrix are set to 0, except entry (0, 0). 0: keep all.
    public var discardRatio: Double
    /// The token whose relevance is explained (the class token, 0).
    public var outputToken: Int
    /// Tokens before the patches (1: the class token; 2 with a distillation token).
    public var prefixTokens: Int
    /// The patch grid (h, w); nil: square.
    public var grid: (height: Int, width: Int)?
    /// The graph input fed with the image; nil: the model's first input.
    public var inputName: String?

    public init(attentionNames: [String]? = nil, headFusion: HeadFusion = .mean, discardRatio: Double = 0,
                outputToken: Int = 0, prefixTokens: Int = 1, grid: (height: Int, width: Int)? = nil, inputName: String? = nil) {
        self.attentionNames = attentionNames
        self.headFusion = headFusion
        self.discardRatio = discardRatio
        self.outputToken = outputToken
        self.prefixTokens = prefixTokens
        self.grid = grid
        self.inputName = inputName
    }
}

/// Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers",
/// ACL, eq. 1): with the residual connection modelled as an identity,
///
///     Ã_l = rownorm(fuse_heads(A_l) + I)     (= 0.5·A_l + 0.5·I when rows of A_l sum to 1)
///     R   = Ã_L · Ã_{L−1} ··· Ã_1
///
/// and the relevance of input token j for the output token o is `R[o, j]`. Rows of R sum to 1.
/// The vit-explain recipe (head fusion mean, discard ratio 0) is the default; vit-explain's
/// final division by the maximum is left to display code. Computed in double precision.
///
/// ```swift
/// let r = try AttentionRollout().explain(vit, input: images)   // r.map: (B, h, w)
/// ```
public struct AttentionRollout: Sendable {
    public var settings: AttentionSettings
    public init(_ settings: AttentionSettings = AttentionSettings()) { self.settings = settings }

    /// One forward pass capturing the attention maps, then ``rollout(_:headFusion:discardRatio:)``.
    public func explain(_ model: Model, input: Tensor) throws -> AttentionRelevance {
        let (names, maps) = try settings.capture(model, input: input, method: "AttentionRollout")
        let r = try Self.rollout(maps, headFusion: settings.headFusion, discardRatio: settings.discardRatio)
        let (b, t) = (r.shape[0], r.shape[1])
        let v = try r.floats()
        var row = [Float](repeating: 0, count: b * t)
        try settings.checkTokens(t, method: "AttentionRollout")
        for n in 0..<b { for j in 0..<t { row[n * t + j] = v[(n * t + settings.outputToken) * t + j] } }
        var out = try settings.relevance(rows: row, batch: b, tokens: t, method: "AttentionRollout")
        out.full = r
        out.attentionNames = names
        return out
    }

    /// The rollout product of attention maps, each (B, H, T, T), bottom layer first: (B, T, T).
    public static func rollout(_ attentions: [Tensor], headFusion: HeadFusion = .mean, discardRatio: Double = 0) throws -> Tensor {
        let (b, t, layers) = try AttentionMath.augmented(attentions, fusion: headFusion, discardRatio: discardRatio, method: "AttentionRollout")
        let tt = t * t
        var r = [Double](repeating: 0, count: b * tt)
        for n in 0..<b { for i in 0..<t { r[n * tt + i * t + i] = 1 } }
        var next = r
        for m in layers {
            for n in 0..<b {
                let o = n * tt
                for i in 0..<t {
                    for j in 0..<t {
                        var s = 0.0
                        for k in 0..<t { s += m[o + i * t + k] * r[o + k * t + j] }
                        next[o + i * t + j] = s
                    }
                }
            }
            swap(&r, &next)
        }
        return try Tensor(shape: [b, t, t], floats: r.map { Float($0) })
    }
}

extension AttentionSettings {
    func capture(_ model: Model, input: Tensor, method: String) throws -> ([String], [Tensor]) {
        guard let name = inputName ?? model.inputs.first?.name else {
            throw ExplainError.unsupported(method: method, reason: "the model declares no input")
        }
        let (names, maps) = try AttentionMaps.capture(model, inputs: [name: input], names: attentionNames, method: method)
        return (names, maps)
    }

    func checkTokens(_ t: Int, method: String) throws {
        guard outputToken >= 0, outputToken < t else {
            throw ExplainError.invalidArgument(method: method, message: "outputToken \(outputToken) outside the \(t) tokens")
        }
        guard prefixTokens >= 0, prefixTokens < t else {
            throw ExplainError.invalidArgument(method: method, message: "prefixTokens \(prefixTokens) leaves no patch among \(t) tokens")
        }
    }

    /// Drops the prefix tokens of per-token values (B, T) and lays the rest on the patch grid.
    func relevance(rows: [Float], batch b: Int, tokens t: Int, method: String) throws -> AttentionRelevance {
        let p = t - prefixTokens
        let (h, w): (Int, Int)
        if let g = grid {
            guard g.height * g.width == p else {
                throw ExplainError.invalidArgument(method: method, message: "grid \(g.height)×\(g.width) does not hold the \(p) patch tokens")
            }
            (h, w) = g
        } else {
            let s = Int(Double(p).squareRoot().rounded())
            guard s * s == p else {
                throw ExplainError.invalidArgument(method: method, message: "\(p) patch tokens (\(t) tokens − \(prefixTokens) prefix) are not a square grid; give settings.grid")
            }
            (h, w) = (s, s)
        }
        var patches = [Float](repeating: 0, count: b * p)
        for n in 0..<b { for j in 0..<p { patches[n * p + j] = rows[n * t + prefixTokens + j] } }
        return AttentionRelevance(map: try Tensor(shape: [b, h, w], floats: patches),
                                  tokens: try Tensor(shape: [b, p], floats: patches),
                                  full: try Tensor(shape: [b, t], floats: rows), attentionNames: [])
    }
}

/// The residual-augmented, head-fused attention matrices both methods start from.
enum AttentionMath {
    /// Per layer, (B, T, T) row-major doubles: `rownorm(fuse(A) (with discards) + I)`.
    static func augmented(_ attentions: [Tensor], fusion: HeadFusion, discardRatio: Double,
                          method: String) throws -> (batch: Int, tokens: Int, layers: [[Double]]) {
        guard let first = attentions.first else {
            throw ExplainError.invalidArgument(method: method, message: "no attention maps given")
        }
        guard first.rank == 4, first.shape[2] == first.shape[3], first.shape[1] >= 1 else {
            throw ExplainError.invalidArgument(method: method, message: "attention maps must be (batch, heads, tokens, tokens), got \(first.shape)")
        }
        guard discardRatio >= 0, discardRatio < 1 else {
            throw ExplainError.invalidArgument(method: method, message: "discardRatio must be in [0, 1), got \(discardRatio)")
        }
        let (b, heads, t) = (first.shape[0], first.shape[1], first.shape[2])
        let tt = t * t
        var layers: [[Double]] = []
        for (l, a) in attentions.enumerated() {
            guard a.shape == first.shape else {
                throw ExplainError.invalidArgument(method: method, message: "attention map \(l) has shape \(a.shape), map 0 has \(first.shape)")
            }
            let v = try a.floats(method)
            var m = [Double](repeating: 0, count: b * tt)
            for n in 0..<b {
                for e in 0..<tt {
                    var acc = Double(v[(n * heads) * tt + e])
                    for h in 1..<max(heads, 1) {
                        let x = Double(v[(n * heads + h) * tt + e])
                        switch fusion {
                        case .mean: acc += x
                        case .max: acc = Swift.max(acc, x)
                        case .min: acc = Swift.min(acc, x)
                        }
                    }
                    m[n * tt + e] = fusion == .mean ? acc / Double(heads) : acc
                }
                let k = Int(Double(tt) * discardRatio)
                if k > 0 {
                    // vit-explain: the k smallest entries (ties by position) except flat index 0.
                    let order = (0..<tt).sorted { (m[n * tt + $0], $0) < (m[n * tt + $1], $1) }
                    for e in order.prefix(k) where e != 0 { m[n * tt + e] = 0 }
                }
                for i in 0..<t {
                    let o = n * tt + i * t
                    m[o + i] += 1
                    var s = 0.0
                    for j in 0..<t { s += m[o + j] }
                    for j in 0..<t { m[o + j] /= s }
                }
            }
            layers.append(m)
        }
        return (b, t, layers)
    }
}
