import LoupeGraph
import LoupeTensor

/// Which scalar an explanation explains, per sample. The explainer differentiates this scalar
/// (its seed cotangent is a one-hot on the chosen element) — "what" is separate from "how" (the
/// explainer) and "where" (the explained input or layer).
///
/// Indices are flat indices into one sample's slice of the value (for a `[batch, classes]`
/// output, the class). Captum's `target=` is `.index` (an int) or `.indices` (a list).
///
/// ```swift
/// try Saliency().explain(model, input: x, target: .top)
/// try Saliency().explain(model, input: x, target: .neuron("conv1_out", index: 17))
/// ```
public enum Target: Sendable {
    /// The same element of the model's first output for every sample.
    case index(Int)
    /// One element of the model's first output per sample.
    case indices([Int])
    /// The largest element of the model's first output, per sample, taken on the unexpanded
    /// input (a path or noise method keeps explaining that class on every sample it draws).
    case top
    /// An element of a named graph output, the same for every sample.
    case output(String, index: Int)
    /// A neuron: an element of any named value (a hook name), the same for every sample.
    case neuron(String, index: Int)
    /// One element per sample of any named value (an output or a hook name).
    case elements(String, indices: [Int])
    /// A user function from one forward's values (outputs, plus the value named by
    /// `Explanation.layer` when one is read out) to seed cotangents by value name; explains
    /// `Σ_v ⟨seed_v, v⟩`. Called once per chunk of rows; seeds must match the values' shapes.
    case custom(@Sendable (_ outputs: [String: Tensor]) throws -> [String: Tensor])

    /// Class `c` of the model's first output (a logit, or a probability if the model ends in
    /// softmax) for every sample.
    public static func logit(_ c: Int) -> Target { .index(c) }
}

/// A target bound to a model and a batch: the value it reads and a flat index per sample.
struct ResolvedTarget: Sendable {
    enum Kind: Sendable {
        case element(value: String, perSample: [Int])
        case custom(@Sendable ([String: Tensor]) throws -> [String: Tensor])
    }
    var kind: Kind

    /// Flat index per sample, nil for custom targets.
    var perSample: [Int]? {
        if case let .element(_, p) = kind { return p }
        return nil
    }

    /// Value that must be kept in the forward pass to seed it (intermediate neurons).
    var valueName: String? {
        if case let .element(v, _) = kind { return v }
        return nil
    }

    /// This target as a public value for rows where row `r` belongs to sample `rowSample[r]`
    /// (what a wrapper passes to the method it wraps).
    func target(forRows rowSample: [Int]) -> Target {
        switch kind {
        case let .element(v, p): return .elements(v, indices: rowSample.map { p[$0] })
        case let .custom(f): return .custom(f)
        }
    }

    /// The same target for rows where row `r` belongs to sample `rowSample[r]`.
    func forRows(_ rowSample: [Int]) -> ResolvedTarget {
        switch kind {
        case let .element(v, p): return ResolvedTarget(kind: .element(value: v, perSample: rowSample.map { p[$0] }))
        case .custom: return self
        }
    }

    /// Seeds for one forward pass of `rows` rows (row-aligned with `perSample`), plus the scalar
    /// explained for each row, `⟨seed_row, value_row⟩`.
    func seeds(in pass: ForwardPass, method: String) throws -> (seeds: [String: Tensor], scores: [Float]) {
        switch kind {
        case let .element(name, perSample):
            let value = try pass.value(name)
            let rows = try value.rowCount(method)
            guard rows == perSample.count else {
                throw ExplainError.unsupported(method: method, reason: "value '\(name)' has \(rows) rows for \(perSample.count) samples; its first axis must be the batch")
            }
            let n = value.rowSize
            let v = try value.floats(method)
            var seed = [Float](repeating: 0, count: value.count)
            var scores = [Float](repeating: 0, count: rows)
            for (r, k) in perSample.enumerated() {
                guard k >= 0 && k < n else {
                    throw ExplainError.invalidArgument(method: method, message: "target index \(k) is outside '\(name)' (\(n) elements per sample)")
                }
                seed[r * n + k] = 1
                scores[r] = v[r * n + k]
            }
            return ([name: try Tensor(shape: value.shape, floats: seed)], scores)
        case let .custom(f):
            var values = pass.outputs
            for (k, v) in pass.captured { values[k] = v }
            let seeds = try f(values)
            var scores: [Float]? = nil
            for (name, s) in seeds {
                let v = try pass.value(name)
                guard v.shape == s.shape else {
                    throw ExplainError.invalidArgument(method: method, message: "custom target seed for '\(name)' has shape \(s.shape), the value has \(v.shape)")
                }
                let rows = try v.rowCount(method), n = v.rowSize
                let a = try v.floats(method), b = try s.floats(method)
                if scores == nil { scores = [Float](repeating: 0, count: rows) }
                for r in 0..<min(rows, scores?.count ?? 0) {
                    var acc: Float = 0
                    for i in (r * n)..<((r + 1) * n) { acc += a[i] * b[i] }
                    scores?[r] += acc
                }
            }
            return (seeds, scores ?? [])
        }
    }
}

extension Target {
    /// Binds the target to `model` for a batch of `batch` samples. `.top` runs one plain forward
    /// on `feeds` (the unexpanded batch) to find each sample's largest output.
    func resolve(model: Model, feeds: [String: Tensor], batch: Int, method: String) throws -> ResolvedTarget {
        guard let first = model.outputs.first?.name else {
            throw ExplainError.unsupported(method: method, reason: "the model declares no output")
        }
        func check(_ list: [Int]) throws -> [Int] {
            guard list.count == batch else {
                throw ExplainError.invalidArgument(method: method, message: "\(list.count) target indices for a batch of \(batch)")
            }
            return list
        }
        switch self {
        case let .index(i): return ResolvedTarget(kind: .element(value: first, perSample: Array(repeating: i, count: batch)))
        case let .indices(list): return ResolvedTarget(kind: .element(value: first, perSample: try check(list)))
        case let .output(name, i):
            guard model.outputs.contains(where: { $0.name == name }) else {
                throw ExplainError.invalidArgument(method: method, message: "the model has no output '\(name)' (outputs: \(model.outputs.map(\.name).joined(separator: ", ")))")
            }
            return ResolvedTarget(kind: .element(value: name, perSample: Array(repeating: i, count: batch)))
        case let .neuron(name, i):
            _ = try model.hook(name)
            return ResolvedTarget(kind: .element(value: name, perSample: Array(repeating: i, count: batch)))
        case let .elements(name, list):
            _ = try model.hook(name)
            return ResolvedTarget(kind: .element(value: name, perSample: try check(list)))
        case .top:
            guard let y = try model.run(feeds)[first] else {
                throw ExplainError.unsupported(method: method, reason: "the forward pass did not produce output '\(first)'")
            }
            let rows = try y.rowCount(method)
            guard rows == batch, y.rowSize > 0 else {
                throw ExplainError.unsupported(method: method, reason: "output '\(first)' of shape \(y.shape) has no per-sample scores for a batch of \(batch)")
            }
            let v = try y.floats(method), n = y.rowSize
            var best = [Int](repeating: 0, count: rows)
            for r in 0..<rows {
                for k in 1..<max(n, 1) where v[r * n + k] > v[r * n + best[r]] { best[r] = k }
            }
            return ResolvedTarget(kind: .element(value: first, perSample: best))
        case let .custom(f): return ResolvedTarget(kind: .custom(f))
        }
    }
}
