#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LoupeTensor

/// Batch-parallel inference: ``Model/run(_:hooks:)`` on a batch of at least two images per
/// thread runs one single-threaded forward per core on its share of the batch, concurrently,
/// and concatenates the outputs.
///
/// Why: every kernel splits its own work over the cores, each in its own way (a GEMM by pixel
/// columns, a depthwise convolution by channel blocks, an element-wise pass by flat ranges), so
/// about half of what one layer writes is read by the other core in the next. On this
/// project's VM the two vCPUs are sometimes placed far apart (a cache line's round trip 55 →
/// 325 ns) and then mobilenet_v3_small at batch 16 slowed from 17 to 28 ms. With the batch
/// split, each core reads only what it wrote, the pool synchronises once per call instead of
/// several times per layer, and the time no longer depends on the placement.
///
/// Only when it cannot change any result: the first call with a set of input shapes runs the
/// whole batch and checks, on that pass's shapes, that every node keeps samples apart (a
/// whitelist of operators with conditions on their axes and operands: ``BatchSplitCheck``) and
/// that every output has the batch as its first dimension. Only later calls with those shapes
/// split, and the first split call also checks that each part's outputs have the part's
/// shapes; any failure there runs the whole batch instead and never splits those shapes again.
final class BatchSplitVerdicts: @unchecked Sendable {
    enum Verdict { case split, whole }
    private var verdicts: [[[Int]]: (verdict: Verdict, verified: Bool)] = [:]
    private var lock = pthread_mutex_t()
    /// Input-shape signatures remembered; past this the table starts over.
    static let capacity = 16
    /// `LOUPE_BATCH_SPLIT=0` keeps every batch whole (for A/B timing in one binary).
    static let enabled: Bool = {
        guard let v = getenv("LOUPE_BATCH_SPLIT") else { return true }
        return String(cString: v) != "0"
    }()

    init() { pthread_mutex_init(&lock, nil) }
    deinit { pthread_mutex_destroy(&lock) }

    func lookup(_ key: [[Int]]) -> (verdict: Verdict, verified: Bool)? {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return verdicts[key]
    }

    func store(_ key: [[Int]], _ verdict: Verdict, verified: Bool) {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if verdicts.count >= Self.capacity && verdicts[key] == nil { verdicts.removeAll() }
        verdicts[key] = (verdict, verified)
    }
}

extension Model {
    /// Whether ``run(_:hooks:)`` splits a batch of these input shapes (in ``inputs`` order)
    /// over the cores: nil until a call with them has decided it.
    public func splitsBatch(inputShapes: [[Int]]) -> Bool? {
        batchSplitVerdicts.lookup(inputShapes).map { $0.verdict == .split }
    }

    /// Runs the batch in `parts` concurrent single-threaded forwards when that is known to give
    /// the whole batch's outputs (``BatchSplitVerdicts``); nil when it does not apply (then the
    /// caller runs the whole batch).
    func runSplittingBatch(_ feeds: [String: Tensor]) throws -> [String: Tensor]? {
        let parts = Kernels.threads
        // Feeds that are not inputs are left to the whole forward pass to report.
        guard BatchSplitVerdicts.enabled, parts >= 2, !inputSlots.isEmpty, feeds.count == inputSlots.count, let batch = commonBatch(feeds),
              batch >= 2 * parts else { return nil }
        let key = inputSlots.map { feeds[$0.info.name]?.shape ?? [] }
        guard let known = batchSplitVerdicts.lookup(key) else {
            // First call with these shapes: the whole batch, checked.
            let pass = try forward(feeds)
            let ok = BatchSplitCheck(model: self, shapes: pass.shapes, batch: batch).splittable
            batchSplitVerdicts.store(key, ok ? .split : .whole, verified: false)
            return pass.outputs
        }
        guard known.verdict == .split else { return nil }
        // Contiguous shares, the first ones one larger when the batch does not divide.
        var bounds = [0]
        for p in 0..<parts { bounds.append(bounds[p] + batch / parts + (p < batch % parts ? 1 : 0)) }
        let shares: [[String: Tensor]] = try (0..<parts).map { p in
            try feeds.mapValues { try $0.sliced([SliceRange(axis: 0, start: bounds[p], end: bounds[p + 1])]) }
        }
        let results = UnsafeMutableBufferPointer<Result<[String: Tensor], Error>?>.allocate(capacity: parts)
        results.initialize(repeating: nil)
        defer { results.deinitialize(); results.deallocate() }
        // One task per share: the caller runs the first, the pool's worker the other; kernels
        // called inside a task run serially on its thread.
        Kernels.parallelFor(parts) { p in
            results[p] = Result(catching: { try self.forward(shares[p]).outputs })
        }
        var outs: [[String: Tensor]] = []
        for p in 0..<parts {
            switch results[p] {
            case let .success(o)?: outs.append(o)
            case let .failure(e)?:
                if known.verified { throw e }
                batchSplitVerdicts.store(key, .whole, verified: true)
                return nil
            case nil: return nil
            }
        }
        var merged: [String: Tensor] = [:]
        for name in outs[0].keys {
            let pieces = outs.compactMap { $0[name] }
            if !known.verified {
                // Each part's output must be the whole output's rows for its share.
                guard pieces.count == parts, pieces.enumerated().allSatisfy({ p, t in
                    t.rank >= 1 && t.shape[0] == bounds[p + 1] - bounds[p] && Array(t.shape.dropFirst()) == Array(pieces[0].shape.dropFirst())
                }) else {
                    batchSplitVerdicts.store(key, .whole, verified: true)
                    return nil
                }
            }
            merged[name] = try Tensor.concatenated(pieces, axis: 0)
        }
        if !known.verified { batchSplitVerdicts.store(key, .split, verified: true) }
        return merged
    }

    /// The first dimension shared by every fed input, or nil.
    private func commonBatch(_ feeds: [String: Tensor]) -> Int? {
        var batch: Int?
        for (info, _) in inputSlots {
            guard let t = feeds[info.name], t.rank >= 1 else { return nil }
            if let b = batch, b != t.shape[0] { return nil }
            batch = t.shape[0]
        }
        return batch
    }
}
