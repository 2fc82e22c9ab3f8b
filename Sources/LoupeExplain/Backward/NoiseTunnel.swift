import LoupeGraph
import LoupeTensor

/// SmoothGrad (Smilkov et al. 2017), SmoothGrad² and VarGrad (Adebayo et al. 2018) over any
/// explainer: the wrapped method runs on `samples` noisy copies of each sample,
/// `x + ε, ε ~ N(0, stdev²)` (stdev absolute, in input units), and the attributions are reduced
/// per sample by mean, mean of squares, or variance `E[a²] − E[a]²`. Equals Captum
/// `NoiseTunnel(method).attribute(nt_type:, nt_samples:, stdevs:)`.
///
/// Noisy rows are sample-major (sample 0's copies first), like Captum's `repeat_interleave`; a
/// fixed ``noise`` tensor in that layout makes the result exactly reproducible (tests pass
/// Captum's draws). The wrapped method runs the `batch × samples` rows
/// ``ExplainOptions/batchSize`` at a time.
public struct NoiseTunnel<Method: Explainer>: Explainer {
    public enum Kind: String, Sendable, CaseIterable {
        case smoothGrad = "smoothgrad"
        case smoothGradSquared = "smoothgrad_sq"
        case varGrad = "vargrad"
    }

    public var method: Method
    public var kind: Kind
    public var samples: Int
    /// Standard deviation of the Gaussian noise, absolute (not relative to the input's range).
    public var stdev: Float
    /// Explicit noise, `[batch × samples, ...]`, sample-major; nil draws it from `seed`.
    public var noise: Tensor?
    public var seed: UInt64

    public init(_ method: Method, kind: Kind = .smoothGrad, samples: Int = 5, stdev: Float = 1,
                noise: Tensor? = nil, seed: UInt64 = 0) {
        self.method = method
        self.kind = kind
        self.samples = samples
        self.stdev = stdev
        self.noise = noise
        self.seed = seed
    }

    public var methodName: String { "NoiseTunnel(\(kind.rawValue), \(method.methodName))" }

    public func explain(_ model: Model, inputs: [String: Tensor], target: Target, options: ExplainOptions) throws -> Explanation {
        let name = methodName
        guard samples >= 1 else { throw ExplainError.invalidArgument(method: name, message: "samples must be at least 1, got \(samples)") }
        let setup = try ExplainSetup(model: model, inputs: inputs, options: options, method: name)
        let t = try target.resolve(model: model, feeds: inputs, batch: setup.batch, method: name)
        let B = setup.batch, S = samples
        let rowSample = (0..<B).flatMap { Array(repeating: $0, count: S) }
        let eps = try noise ?? Self.draw(shape: [B * S] + setup.x.shape.dropFirst(), stdev: stdev, seed: seed)
        guard eps.shape == [B * S] + setup.x.shape.dropFirst() else {
            throw ExplainError.invalidArgument(method: name, message: "noise of shape \(eps.shape); expected \([B * S] + setup.x.shape.dropFirst()) (batch × samples rows, sample-major)")
        }
        let noisy = try ExplainElementwise.combine(try setup.x.gatheringRows(rowSample), eps, name) { $0 + $1 }
        var feeds = try ModifiedBackward.otherFeeds(setup, samples: rowSample)
        feeds[setup.inputName] = noisy
        var innerOptions = options
        innerOptions.input = setup.inputName
        let inner = try method.repeatingSamples(S).explain(model, inputs: feeds, target: t.target(forRows: rowSample), options: innerOptions)

        let a = try inner.attribution.floats(name)
        let m = inner.attribution.rowSize
        var mean = [Float](repeating: 0, count: B * m), sq = mean
        for s in 0..<B {
            for k in 0..<S {
                let base = (s * S + k) * m
                for i in 0..<m {
                    mean[s * m + i] += a[base + i]
                    sq[s * m + i] += a[base + i] * a[base + i]
                }
            }
        }
        let inv = 1 / Float(S)
        for i in 0..<mean.count { mean[i] *= inv; sq[i] *= inv }
        let out: [Float]
        switch kind {
        case .smoothGrad: out = mean
        case .smoothGradSquared: out = sq
        case .varGrad: out = (0..<mean.count).map { sq[$0] - mean[$0] * mean[$0] }
        }
        var params = inner.parameters
        params["samples"] = "\(S)"
        params["stdev"] = noise == nil ? "\(stdev)" : "explicit noise"
        params["kind"] = kind.rawValue
        return Explanation(attribution: try Tensor(shape: [B] + inner.attribution.shape.dropFirst(), floats: out), method: name,
                           parameters: params, input: setup.inputName, layer: inner.layer, targets: t.perSample,
                           convergenceDelta: inner.convergenceDelta)
    }

    static func draw(shape: [Int], stdev: Float, seed: UInt64) throws -> Tensor {
        Tensor.makeFloats(shape: shape) { o in ExplainRNG.fillNormal(o, stdev: stdev, seed: seed) }
    }
}
