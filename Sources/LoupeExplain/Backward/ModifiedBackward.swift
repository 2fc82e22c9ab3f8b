import LoupeGraph
import LoupeTensor

/// The modified-backward engine (ARCHITECTURE.md, seam 2): a ``RuleMap`` (plain gradients,
/// guided backprop, DeconvNet, ...) applied to rows an input sampler built, read out at the
/// input or at a layer. Every gradient method is this engine plus a sampler (identity, a path,
/// noise) and a reduction (sum over path steps, mean / mean of squares / variance over noise,
/// × (x − baseline)).
///
/// Rows run `batchSize` at a time, one forward and one backward per chunk, so a 50-step path on
/// a batch of 8 never holds 400 rows of activations at once.
public struct ModifiedBackward: Sendable {
    /// Backward rule per node; ``RuleMap/gradient`` for exact gradients.
    public var rules: RuleMap

    public init(rules: RuleMap = .gradient) { self.rules = rules }

    /// What one engine run returns, row-aligned with the rows it was given.
    struct Result {
        /// `∂ target / ∂ (input or layer)` per row, `[rows, ...]`.
        var gradients: Tensor
        /// The layer's value per row when a layer was read out.
        var activations: Tensor?
        /// The explained scalar per row (`⟨seed, value⟩`).
        var scores: [Float]
    }

    /// Runs `rows` (row r belongs to sample `rowSample[r]`) through forward + this engine's
    /// backward and returns the gradient at the input (or at `layer`) for every row.
    ///
    /// With `rowsReplaceLayer`, `rows` are values of `layer` instead: each forward runs the
    /// rows' samples of the input with the layer's value replaced by the rows (layer path
    /// methods such as layer Integrated Gradients), and the gradient is taken at the layer.
    func run(_ model: Model, setup: ExplainSetup, rows: Tensor, rowSample: [Int], target: ResolvedTarget,
             layer: String?, batchSize: Int?, method: String, rowsReplaceLayer: Bool = false) throws -> Result {
        let total = try rows.rowCount(method)
        var grads: [Float] = [], acts: [Float] = [], scores: [Float] = []
        var gradShape: [Int]? = nil
        try forEachChunk(model, setup: setup, rowSample: rowSample, rows: { try rows.rows($0) }, target: target,
                         layer: layer, batchSize: batchSize, method: method, rowsReplaceLayer: rowsReplaceLayer) { _, g, a, s in
            if gradShape == nil {
                gradShape = g.shape
                grads.reserveCapacity(g.rowSize * total)
            }
            grads += try g.floats(method)
            if let a { acts += try a.floats(method) }
            scores += s
        }
        var shape = gradShape ?? rows.shape
        shape[0] = total
        return Result(gradients: try Tensor(shape: shape, floats: grads),
                      activations: layer == nil || rowsReplaceLayer ? nil : try Tensor(shape: shape, floats: acts),
                      scores: scores)
    }

    /// The streaming form of ``run``: rows are built per chunk by `rows(range)` and each chunk's
    /// gradients (and layer values, and scores) go to `body` and are dropped, so memory holds
    /// one chunk of rows — path methods reduce as they go instead of keeping `steps × batch`
    /// gradients.
    func forEachChunk(_ model: Model, setup: ExplainSetup, rowSample: [Int], rows: (Range<Int>) throws -> Tensor,
                      target: ResolvedTarget, layer: String?, batchSize: Int?, method: String, rowsReplaceLayer: Bool = false,
                      body: (Range<Int>, _ gradients: Tensor, _ activations: Tensor?, _ scores: [Float]) throws -> Void) throws {
        let total = rowSample.count
        let chunk = try setup.chunkSize(batchSize, total: total, method: method)
        let wrt = layer ?? setup.inputName
        let layerHook = try layer.map { try model.hook($0) }
        let hooks = try Self.readoutHooks(model, target: target, capture: rowsReplaceLayer ? nil : layerHook)
        if rowsReplaceLayer && layerHook == nil {
            throw ExplainError.invalidArgument(method: method, message: "layer rows given without a layer")
        }
        try Self.forEachRowChunk(setup, rowSample: rowSample, chunk: chunk) { range, samples, feeds in
            let (lo, hi) = (range.lowerBound, range.upperBound)
            var chunkHooks = hooks
            let chunkRows = try rows(range)
            guard chunkRows.rank >= 1, chunkRows.shape[0] == hi - lo else {
                throw ExplainError.invalidArgument(method: method, message: "sampler built \(chunkRows.shape) for \(hi - lo) rows")
            }
            if rowsReplaceLayer, let layerHook {
                feeds[setup.inputName] = try setup.x.gatheringRows(samples)
                chunkHooks.replace(layerHook, with: chunkRows)
            } else {
                feeds[setup.inputName] = chunkRows
            }
            let pass = try model.forward(feeds, hooks: chunkHooks, recording: rules)
            let (seeds, s) = try target.forRows(samples).seeds(in: pass, method: method)
            let g = try pass.backward(seeds: seeds, wrt: [wrt])
            guard let gw = g[wrt] else {
                throw ExplainError.unsupported(method: method, reason: "no gradient at '\(wrt)'")
            }
            guard gw.rank >= 1, gw.shape[0] == hi - lo else {
                throw ExplainError.unsupported(method: method, reason: "'\(wrt)' of shape \(gw.shape) has no batch axis of \(hi - lo) rows")
            }
            let act = layer != nil && !rowsReplaceLayer ? try pass.value(wrt) : nil
            try body(range, gw, act, s)
            setup.progress?(hi, total)
        }
    }

    /// Rows `0..<rowSample.count` in chunks of `chunk`: each chunk's range, its rows' samples,
    /// and the feeds other than the explained input gathered for them.
    static func forEachRowChunk(_ setup: ExplainSetup, rowSample: [Int], chunk: Int,
                                _ body: (Range<Int>, [Int], inout [String: Tensor]) throws -> Void) throws {
        var lo = 0
        while lo < rowSample.count {
            let hi = min(rowSample.count, lo + chunk)
            let samples = Array(rowSample[lo..<hi])
            var feeds = try otherFeeds(setup, samples: samples)
            try body(lo..<hi, samples, &feeds)
            lo = hi
        }
    }

    /// Captures for a readout: the layer (if any) and a target value that is not a graph output.
    static func readoutHooks(_ model: Model, target: ResolvedTarget, capture layer: HookName?) throws -> Hooks {
        var hooks = Hooks()
        if let layer { hooks.capture(layer) }
        if let v = target.valueName, !model.outputs.contains(where: { $0.name == v }) { hooks.capture(try model.hook(v)) }
        return hooks
    }

    /// Rows and their reference rows (row r of each belongs to sample `rowSample[r]`) as two
    /// forward passes per chunk and one paired backward
    /// (``ForwardPass/pairedBackward(reference:seeds:referenceSeeds:wrt:)``): how row-pairing
    /// rules (DeepLIFT) run on a model whose fixed batch cannot hold `[x; x']`. `body` gets the
    /// input rows' gradients at the input (or `layer`), the layer's values of both passes, and
    /// both passes' scores.
    func forEachPairedChunk(_ model: Model, setup: ExplainSetup, rows: Tensor, referenceRows: Tensor, rowSample: [Int],
                            target: ResolvedTarget, layer: String?, batchSize: Int?, method: String,
                            body: (Range<Int>, _ gradients: Tensor, _ layerValues: (Tensor, Tensor)?, _ scores: [Float],
                                   _ referenceScores: [Float]) throws -> Void) throws {
        let total = rowSample.count
        let chunk = try setup.chunkSize(batchSize, total: total, method: method)
        let wrt = layer ?? setup.inputName
        let hooks = try Self.readoutHooks(model, target: target, capture: try layer.map { try model.hook($0) })
        try Self.forEachRowChunk(setup, rowSample: rowSample, chunk: chunk) { range, samples, feeds in
            let (lo, hi) = (range.lowerBound, range.upperBound)
            feeds[setup.inputName] = try rows.rows(range)
            let pass = try model.forward(feeds, hooks: hooks, recording: rules)
            feeds[setup.inputName] = try referenceRows.rows(range)
            let reference = try model.forward(feeds, hooks: hooks, recording: rules)
            let perRow = target.forRows(samples)
            let (seeds, s) = try perRow.seeds(in: pass, method: method)
            let (referenceSeeds, sr) = try perRow.seeds(in: reference, method: method)
            let g = try pass.pairedBackward(reference: reference, seeds: seeds, referenceSeeds: referenceSeeds, wrt: [wrt]).gradients
            guard let gw = g[wrt], gw.rank >= 1, gw.shape[0] == hi - lo else {
                throw ExplainError.unsupported(method: method, reason: "no gradient with a batch axis of \(hi - lo) rows at '\(wrt)'")
            }
            let values = layer != nil ? (try pass.value(wrt), try reference.value(wrt)) : nil
            try body(range, gw, values, s, sr)
            setup.progress?(hi, total)
        }
    }

    /// The explained scalar for `rows` by plain forwards (no backward), `batchSize` rows at a time.
    static func scores(_ model: Model, setup: ExplainSetup, rows: Tensor, rowSample: [Int], target: ResolvedTarget,
                       batchSize: Int?, method: String) throws -> [Float] {
        let total = try rows.rowCount(method)
        let chunk = try setup.chunkSize(batchSize, total: total, method: method)
        let hooks = try readoutHooks(model, target: target, capture: nil)
        var out: [Float] = []
        try forEachRowChunk(setup, rowSample: Array(rowSample.prefix(total)), chunk: chunk) { range, samples, feeds in
            feeds[setup.inputName] = try rows.rows(range)
            let pass = try model.forward(feeds, hooks: hooks)
            out += try target.forRows(samples).seeds(in: pass, method: method).scores
        }
        return out
    }

    /// The value of `layer` for `rows` of the explained input (plain forwards, `batchSize` rows
    /// at a time).
    static func layerValues(_ model: Model, setup: ExplainSetup, rows: Tensor, rowSample: [Int], layer: String,
                            batchSize: Int?, method: String) throws -> Tensor {
        let total = try rows.rowCount(method)
        let chunk = try setup.chunkSize(batchSize, total: total, method: method)
        var hooks = Hooks()
        hooks.capture(try model.hook(layer))
        var parts: [Tensor] = []
        try forEachRowChunk(setup, rowSample: Array(rowSample.prefix(total)), chunk: chunk) { range, _, feeds in
            let (lo, hi) = (range.lowerBound, range.upperBound)
            feeds[setup.inputName] = try rows.rows(range)
            guard let v = try model.forward(feeds, hooks: hooks).captured[layer] else {
                throw ExplainError.unsupported(method: method, reason: "layer '\(layer)' was not computed")
            }
            guard v.rank >= 1, v.shape[0] == hi - lo, v.dtype == .float32 else {
                throw ExplainError.unsupported(method: method, reason: "layer '\(layer)' of shape \(v.shape) (\(v.dtype)) has no float batch axis of \(hi - lo) rows")
            }
            parts.append(v)
        }
        return try Tensor.concatenated(parts, axis: 0)
    }

    /// Feeds other than the explained input, with per-sample ones (leading axis = batch)
    /// gathered to follow the rows.
    static func otherFeeds(_ setup: ExplainSetup, samples: [Int]) throws -> [String: Tensor] {
        var feeds: [String: Tensor] = [:]
        for (k, v) in setup.others {
            if v.rank >= 1 && v.shape[0] == setup.batch && setup.batch > 0 {
                feeds[k] = try v.gatheringRows(samples)
            } else {
                feeds[k] = v
            }
        }
        return feeds
    }

    func otherFeeds(_ setup: ExplainSetup, samples: [Int]) throws -> [String: Tensor] {
        try Self.otherFeeds(setup, samples: samples)
    }
}
