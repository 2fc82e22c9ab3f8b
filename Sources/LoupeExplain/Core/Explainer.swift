import LoupeGraph
import LoupeTensor

/// Where to explain and how much to run at once; the same for every method.
public struct ExplainOptions: Sendable {
    /// The graph input to attribute to; nil: the model's only float input (or its first input).
    public var input: String?
    /// A hook name whose value (a layer's output) is attributed instead of the input: Captum's
    /// Layer* methods, for every method here. The value's first axis must be the batch.
    /// nil: the input.
    public var layer: String?
    /// At most this many rows per forward/backward. Path and noise methods expand a batch of B
    /// samples into B × steps (or × samples) rows; they run them `batchSize` rows at a time, so
    /// memory is bounded by `batchSize`, never by the expansion. nil: the whole expansion at once.
    public var batchSize: Int?
    /// Called after each forward/backward chunk with the rows done and the rows in total (of
    /// the current expansion), e.g. to drive a progress bar. Called on the explaining thread.
    public var progress: (@Sendable (_ done: Int, _ total: Int) -> Void)?

    public init(input: String? = nil, layer: String? = nil, batchSize: Int? = nil,
                progress: (@Sendable (_ done: Int, _ total: Int) -> Void)? = nil) {
        self.input = input
        self.layer = layer
        self.batchSize = batchSize
        self.progress = progress
    }
}

/// An attribution method. One verb: ``explain(_:inputs:target:options:)``. Methods are values
/// (structs holding their parameters), composable (``NoiseTunnel`` wraps any of them), and
/// stateless: a value can be shared across threads and calls.
public protocol Explainer: Sendable {
    /// The method's name in ``Explanation/method``.
    var methodName: String { get }

    /// Attributes the target's value to the explained input (or layer).
    ///
    /// - Parameters:
    ///   - model: a compiled model.
    ///   - inputs: one tensor per graph input, batch-first; the explained one is float32.
    ///   - target: which scalar to explain per sample.
    ///   - options: which input or layer, and the batch size of expanded runs.
    func explain(_ model: Model, inputs: [String: Tensor], target: Target, options: ExplainOptions) throws -> Explanation

    /// This explainer for inputs whose samples were each repeated `n` times in place (sample-major,
    /// like `repeat_interleave`): per-sample parameters such as baselines are repeated the same
    /// way. Used by ``NoiseTunnel``; the default returns `self`.
    func repeatingSamples(_ n: Int) throws -> Self
}

extension Explainer {
    public func repeatingSamples(_ n: Int) throws -> Self { self }

    /// Explains the model's single input `input`.
    public func explain(_ model: Model, input: Tensor, target: Target, options: ExplainOptions = ExplainOptions()) throws -> Explanation {
        guard let name = options.input ?? model.inputs.first?.name else {
            throw ExplainError.unsupported(method: methodName, reason: "the model declares no input")
        }
        return try explain(model, inputs: [name: input], target: target, options: options)
    }
}

/// What every method first works out: the explained input, the other feeds, the batch.
struct ExplainSetup {
    var inputName: String
    var x: Tensor
    var batch: Int
    var others: [String: Tensor]
    /// The batch size the model declares for the explained input, when fixed (an export without
    /// a dynamic batch axis): expanded rows must then run that many at a time.
    var fixedBatch: Int?
    /// ``ExplainOptions/progress``.
    var progress: (@Sendable (Int, Int) -> Void)?

    /// Rows per forward for `total` rows: the user's `batchSize`, capped by a fixed declared batch.
    func chunkSize(_ batchSize: Int?, total: Int, method: String) throws -> Int {
        var c = max(1, batchSize ?? total)
        if let f = fixedBatch {
            guard f == 1 || total % f == 0 else {
                throw ExplainError.unsupported(method: method, reason: "input '\(inputName)' has a fixed batch of \(f) in the model; \(total) expanded rows cannot run in batches of \(f) (export with a dynamic batch axis, or a fixed batch of 1)")
            }
            c = f
        }
        return c
    }

    init(model: Model, inputs: [String: Tensor], options: ExplainOptions, method: String) throws {
        let floatInputs = model.inputs.filter { $0.elementType == 1 || $0.elementType == 0 }
        let name: String
        if let n = options.input {
            name = n
        } else if floatInputs.count == 1 {
            name = floatInputs[0].name
        } else if let n = model.inputs.first?.name {
            name = n
        } else {
            throw ExplainError.unsupported(method: method, reason: "the model declares no input")
        }
        guard let x = inputs[name] else {
            throw ExplainError.invalidArgument(method: method, message: "no tensor given for the explained input '\(name)' (given: \(inputs.keys.sorted().joined(separator: ", ")))")
        }
        guard x.dtype == .float32 else {
            throw ExplainError.unsupported(method: method, reason: "input '\(name)' is \(x.dtype); gradients need a float input (attribute to an embedding layer instead)")
        }
        if let b = options.batchSize, b < 1 {
            throw ExplainError.invalidArgument(method: method, message: "batchSize must be at least 1, got \(b)")
        }
        inputName = name
        self.x = x
        batch = try x.rowCount(method)
        others = inputs.filter { $0.key != name }
        progress = options.progress
        fixedBatch = model.inputs.first { $0.name == name }?.shape?.first?.value
    }
}
