#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LoupeTensor

/// Wall time one node took in ``Model/profile(_:runs:)``.
public struct StepProfile: Sendable {
    /// The node's name (or `→output` when unnamed) and operator.
    public let node: String
    public let opType: String
    /// Median over the runs, in milliseconds; 0 for a step fused into its producer (its time is
    /// the producer's) or not needed.
    public let milliseconds: Double
}

extension Model {
    /// Times each step of the plain forward pass (`run`), `runs` times after one warm-up, and
    /// returns the per-step medians in execution order: where a model's time goes, as
    /// onnxruntime's profiler would say it. The clock reads add well under a microsecond per step.
    /// With symbolic input dimensions the steps are those of the model specialised to the
    /// feeds' shapes (``ShapeSpecialisation``), what ``run(_:hooks:)`` executes.
    public func profile(_ feeds: [String: Tensor], runs: Int = 10) throws -> [StepProfile] {
        if shapeSpecialisation != nil {
            // One call makes the specialisation when these shapes are new.
            if specialisation(for: feeds)?.model == nil { _ = try forward(feeds) }
            if let made = specialisation(for: feeds)?.model { return try made.profile(feeds, runs: runs) }
        }
        let n = steps.count, r = max(1, runs)
        var samples = [[UInt64]](repeating: [], count: n)
        var buffer = [UInt64](repeating: 0, count: n)
        for run in 0...r {
            for i in 0..<n { buffer[i] = 0 }
            try buffer.withUnsafeMutableBufferPointer { b in
                _ = try forwardPass(feeds, hooks: .none, recording: nil, allowNonFinite: false, wanted: nil, stepNanoseconds: b)
            }
            if run > 0 { for i in 0..<n { samples[i].append(buffer[i]) } }
        }
        return steps.enumerated().map { i, st in
            let sorted = samples[i].sorted()
            return StepProfile(node: st.node.displayName, opType: st.node.opType,
                               milliseconds: Double(sorted[sorted.count / 2]) / 1e6)
        }
    }
}

/// A monotonic clock in nanoseconds.
@inline(__always) func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}
