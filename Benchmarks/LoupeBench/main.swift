import Foundation
import Loupe

// loupe-bench: times Loupe on one model, one GEMM or one convolution, so the scripts in
// Benchmarks/peers/ can print ratios against PyTorch and onnxruntime measured in the same run
// (Benchmarks/README.md). Build release:
//
//   swift build -c release --product loupe-bench
//   .build/release/loupe-bench MODEL.onnx [--batch 16] [--backward] [--input x.f32] [--profile] [common options]
//   .build/release/loupe-bench gemm M N K [--reps R] [common options]
//   .build/release/loupe-bench conv N C H W M kH kW STRIDE PAD [--groups G] [--backward] [--unpacked] [--recorded] [--reps R] [common options]
//
// Common options: --runs R (timed runs, default 10), --warmup W (untimed runs, each of --reps calls; default 2), --threads T (Loupe's
// pool; default all online CPUs).
//
// MODEL: one forward (`Model.run`), or with --backward a recorded forward plus the backward of
// the sum of the first output to the first input. --input reads raw little-endian float32 for
// the first input (batch x the model's other dims); otherwise inputs are fixed pseudo-random.
// --serve (model mode) keeps the model loaded and answers timing requests on stdin ("W N": W
// untimed calls, then N timed; one times_ms= line each), for peer scripts that interleave.
// --profile prints, instead of the timing line, the median time per operator type and the 25
// slowest nodes (`Model.profile`: each step of a plain forward timed on its own).
// gemm: `Kernels.gemm` on row-major A (M x K), B (K x N) into C (M x N), beta 0.
// conv: `Kernels.conv2d` of x (N, C, H, W) with weight (M, C/G, kH, kW), no bias, square
// stride/padding; with --backward `Kernels.conv2dBackwardInput` instead (the gradient with
// respect to x, what an input attribution needs). The weight is packed once before timing
// (`PackedConvWeights`, as a model does at load) unless --unpacked, which times the per-call
// packing path. --recorded runs the forward inside `Kernels.withDirectConvolutions`, as a
// recorded pass does (F(2×2, 3×3) Winograd or direct; LOUPE_WINOGRAD=direct for direct only).
// --reps R makes each timed run R back-to-back calls (for sub-millisecond kernels); times are
// per call.
//
// Output, one `key=value` line each:
//   median_ms=<float> min_ms=... max_ms=... runs=... <mode fields>   (the line the scripts parse)
//   times_ms=<t1>,<t2>,...                                            per timed run, per call
//   gflops=<median> gflops_best=<from min>                            gemm and conv only
//   run_vs_forward_max_abs_diff=<float> output_max_abs=<float> batch_split=yes|no   model forward
//       mode: `Model.run` (which may split the batch over the cores) against one whole-batch
//       `Model.forward`, and whether it split
//   peak_rss_mb=<peak resident (Linux VmHWM)> baseline_rss_mb=<resident after loading, before the first call>
//       ru_maxrss_mb=<getrusage ru_maxrss: on Linux inherited from the parent when that was larger>

func fail(_ message: String, code: Int32 = 2) -> Never {
    FileHandle.standardError.write(Data("loupe-bench: \(message)\n".utf8))
    exit(code)
}

let usage = """
    usage: loupe-bench MODEL.onnx [--batch N] [--backward] [--input F] [--profile] [--serve] [--runs R] [--warmup W] [--threads T]
           loupe-bench gemm M N K [--reps R] [--runs R] [--warmup W] [--threads T]
           loupe-bench conv N C H W M kH kW STRIDE PAD [--groups G] [--backward] [--unpacked] [--recorded] [--reps R] [--runs R] [--warmup W] [--threads T]
    """

/// Resident set size now, in MiB (Linux: /proc/self/statm; elsewhere the peak stands in).
func currentRSSMiB() -> Double {
    #if os(Linux)
    if let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
        let fields = text.split(separator: " ")
        if fields.count > 1, let pages = Double(fields[1]) {
            return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
        }
    }
    #endif
    return maxRSSMiB()
}

/// Peak resident set size of this process so far, in MiB.
///
/// Linux: VmHWM of /proc/self/status, the high-water mark of this address space. Not
/// getrusage's ru_maxrss there: that survives fork and exec, so a process started by a large
/// parent (a Python harness holding several models) reports the parent's peak.
func peakRSSMiB() -> Double {
    #if os(Linux)
    if let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
       let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
       let kib = Double(line.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") {
        return kib / 1024
    }
    #endif
    return maxRSSMiB()
}

/// getrusage's ru_maxrss, in MiB (see ``peakRSSMiB()`` for why it is not the peak on Linux).
func maxRSSMiB() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024  // KiB on Linux
    #else
    getrusage(RUSAGE_SELF, &usage)
    return Double(usage.ru_maxrss) / 1_048_576  // bytes on macOS
    #endif
}

/// Deterministic pseudo-random floats in [-1, 1).
func pseudoRandom(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(state >> 40) - (1 << 23)) / Float(1 << 23)
    }
}

// MARK: - Arguments

var args = Array(CommandLine.arguments.dropFirst())
guard let first = args.first, !first.hasPrefix("-") else { fail(usage) }
args.removeFirst()
let mode = first == "gemm" || first == "conv" ? first : "model"

/// Leading positional integers of gemm / conv.
@MainActor func positionals(_ count: Int, _ names: String) -> [Int] {
    guard args.count >= count else { fail("\(mode) needs \(names)\n\(usage)") }
    let values = args.prefix(count).map { Int($0) }
    guard values.allSatisfy({ ($0 ?? 0) > 0 || $0 == 0 && names.contains("PAD") }) else {
        fail("\(mode) expects integers \(names), got \(args.prefix(count).joined(separator: " "))")
    }
    args.removeFirst(count)
    return values.map { $0 ?? 0 }
}

let dims: [Int]
switch mode {
case "gemm": dims = positionals(3, "M N K")
case "conv": dims = positionals(9, "N C H W M kH kW STRIDE PAD")
default: dims = []
}

var batch = 1, runs = 10, warmup = 2, reps = 1, groups = 1
var threads: Int?
var backward = false, unpacked = false, recorded = false, profile = false, serve = false
var inputPath: String?
while !args.isEmpty {
    let a = args.removeFirst()
    func value() -> String {
        guard !args.isEmpty else { fail("\(a) needs a value") }
        return args.removeFirst()
    }
    func int() -> Int {
        let v = value()
        guard let n = Int(v) else { fail("\(a) expects an integer, got '\(v)'") }
        return n
    }
    switch a {
    case "--batch": batch = max(1, int())
    case "--runs": runs = max(1, int())
    case "--warmup": warmup = max(0, int())
    case "--reps": reps = max(1, int())
    case "--threads": threads = max(1, int())
    case "--groups": groups = max(1, int())
    case "--backward": backward = true
    case "--unpacked": unpacked = true
    case "--recorded": recorded = true
    case "--profile": profile = true
    case "--serve": serve = true
    case "--input": inputPath = value()
    default: fail("unknown option \(a)\n\(usage)")
    }
}
if let threads { Kernels.threads = threads }

// MARK: - Timing

/// Milliseconds per call of `runs` timed runs of `reps` back-to-back calls each.
func timedRuns(_ runs: Int, reps: Int, _ body: () throws -> Void) rethrows -> [Double] {
    var times: [Double] = []
    for _ in 0..<runs {
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<reps { try body() }
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6 / Double(reps))
    }
    return times
}

/// Times `body` (`reps` calls per run) and prints the result lines; `flops` per call, if known.
@MainActor func measure(fields: String, flops: Double?, baselineMiB: Double, _ body: () throws -> Void) throws {
    // A warm-up run is a run like the timed ones (reps calls): a fresh process needs several
    // calls before its allocator has grown to steady state (a 0.25 ms convolution's first timed
    // run read 0.65-0.95 ms after one warm-up call).
    for _ in 0..<warmup { for _ in 0..<reps { try body() } }
    let times = try timedRuns(runs, reps: reps, body)
    let sorted = times.sorted()
    let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    print(String(format: "median_ms=%.4f min_ms=%.4f max_ms=%.4f runs=%d ", median, sorted[0], sorted[sorted.count - 1], runs)
          + fields + " threads=\(Kernels.threads)")
    print("times_ms=" + times.map { String(format: "%.4f", $0) }.joined(separator: ","))
    if let flops {
        print(String(format: "gflops=%.2f gflops_best=%.2f", flops / median / 1e6, flops / sorted[0] / 1e6))
    }
    print(String(format: "peak_rss_mb=%.1f baseline_rss_mb=%.1f ru_maxrss_mb=%.1f", peakRSSMiB(), baselineMiB, maxRSSMiB()))
}

@MainActor func runGEMM() throws {
    let (m, n, k) = (dims[0], dims[1], dims[2])
    let a = pseudoRandom(m * k, seed: 1), b = pseudoRandom(k * n, seed: 2)
    var c = [Float](repeating: 0, count: m * n)
    let baseline = currentRSSMiB()
    try a.withUnsafeBufferPointer { ap in
        try b.withUnsafeBufferPointer { bp in
            try c.withUnsafeMutableBufferPointer { cp in
                guard let a0 = ap.baseAddress, let b0 = bp.baseAddress, let c0 = cp.baseAddress else { return }
                try measure(fields: "mode=gemm m=\(m) n=\(n) k=\(k) reps=\(reps) gemm_level=\(Kernels.gemmLevel)",
                            flops: 2 * Double(m) * Double(n) * Double(k), baselineMiB: baseline) {
                    Kernels.gemm(m: m, n: n, k: k, a: a0, lda: k, b: b0, ldb: n, c: c0, ldc: n)
                }
            }
        }
    }
}

@MainActor func runConv() throws {
    let (n, c, h, w, m, kh, kw, stride, pad) = (dims[0], dims[1], dims[2], dims[3], dims[4], dims[5], dims[6], dims[7], dims[8])
    guard c % groups == 0, m % groups == 0 else { fail("conv: C and M must be divisible by --groups") }
    let geometry = ConvGeometry(kernel: (kh, kw), strides: (stride, stride), pads: (pad, pad, pad, pad), groups: groups)
    try geometry.validate(op: "conv")
    let (oh, ow) = try geometry.outputSize(height: h, width: w, op: "conv")
    let x = try Tensor(shape: [n, c, h, w], floats: pseudoRandom(n * c * h * w, seed: 1))
    let weight = try Tensor(shape: [m, c / groups, kh, kw], floats: pseudoRandom(m * (c / groups) * kh * kw, seed: 2))
    let gy = try Tensor(shape: [n, m, oh, ow], floats: pseudoRandom(n * m * oh * ow, seed: 3))
    let flops = 2 * Double(n * m * oh * ow) * Double(c / groups * kh * kw)
    // As a loaded model does: the constant weight packed once, the allocator tuned.
    Kernels.tuneAllocator()
    let packed = unpacked ? nil : try PackedConvWeights(weight: weight, groups: groups)
    let fields = "mode=conv n=\(n) c=\(c) h=\(h) w=\(w) m=\(m) kh=\(kh) kw=\(kw) stride=\(stride) pad=\(pad) groups=\(groups) "
        + "backward=\(backward ? "input" : "no") packed=\(unpacked ? "no" : "yes") recorded=\(recorded ? "yes" : "no") reps=\(reps)"
    let baseline = currentRSSMiB()
    try measure(fields: fields, flops: flops, baselineMiB: baseline) {
        if backward {
            _ = try Kernels.conv2dBackwardInput(gy, weight: weight, inputShape: x.shape, geometry: geometry, packed: packed)
        } else if recorded {
            _ = try Kernels.withDirectConvolutions { try Kernels.conv2d(x, weight: weight, bias: nil, geometry: geometry, packed: packed) }
        } else {
            _ = try Kernels.conv2d(x, weight: weight, bias: nil, geometry: geometry, packed: packed)
        }
    }
}

@MainActor func runModel(path: String) throws {
    let model = try Model(graph: try ONNXModel.load(path: path))
    var feeds: [String: Tensor] = [:]
    for (index, info) in model.inputs.enumerated() {
        let shape = (info.shape ?? []).enumerated().map { i, d in d.value ?? (i == 0 ? batch : 1) }
        let count = shape.reduce(1, *)
        if info.elementType == 7 {
            feeds[info.name] = try Tensor(shape: shape, ints: (0..<count).map { Int64($0 % 100) })
        } else if index == 0, let inputPath {
            let data = try Data(contentsOf: URL(fileURLWithPath: inputPath))
            guard data.count == count * 4 else {
                fail("--input \(inputPath) holds \(data.count) bytes; input \(info.name) \(shape) needs \(count * 4)")
            }
            let values = data.withUnsafeBytes { raw in
                (0..<count).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            }
            feeds[info.name] = try Tensor(shape: shape, floats: values)
        } else {
            feeds[info.name] = try Tensor(shape: shape, floats: pseudoRandom(count, seed: 12345 &+ UInt64(index)))
        }
    }
    guard let input = model.inputs.first?.name, let outName = model.outputs.first?.name else {
        fail("\(path): the model has no inputs or no outputs", code: 1)
    }
    if profile {
        // Per operator type and the 25 slowest nodes, medians over --runs.
        let steps = try model.profile(feeds, runs: runs)
        let total = steps.reduce(0) { $0 + $1.milliseconds }
        var byType: [String: (ms: Double, count: Int)] = [:]
        for s in steps where s.milliseconds > 0 { byType[s.opType, default: (0, 0)].ms += s.milliseconds; byType[s.opType, default: (0, 0)].count += 1 }
        print(String(format: "profile_total_ms=%.4f (sum of per-step medians)", total))
        for (op, v) in byType.sorted(by: { $0.value.ms > $1.value.ms }) {
            print(String(format: "op %-22@ %8.4f ms %5.1f %% n=%d", op as NSString, v.ms, 100 * v.ms / total, v.count))
        }
        let all = ProcessInfo.processInfo.environment["LOUPE_PROFILE_ALL"] != nil
        for s in all ? steps : Array(steps.sorted(by: { $0.milliseconds > $1.milliseconds }).prefix(25)) {
            print(String(format: "node %8.4f ms %-18@ %@", s.milliseconds, s.opType as NSString, s.node as NSString))
        }
        return
    }
    let baseline = currentRSSMiB()
    func call() throws {
        if backward {
            let pass = try model.forward(feeds, recording: .gradient)
            guard let y = pass.outputs[outName] else { return }
            _ = try pass.backward(seeds: [outName: Tensor(zeros: y.shape, value: 1)], wrt: [input])
        } else {
            _ = try model.run(feeds)
        }
    }
    if serve { try serveBlocks(call); return }
    try measure(fields: "mode=model batch=\(batch) backward=\(backward ? "yes" : "no")", flops: nil, baselineMiB: baseline, call)
    if !backward {
        // `Model.run` may split the batch over the cores (after the timed calls, the shapes'
        // verdict is settled): its outputs against one whole-batch forward.
        let split = try model.run(feeds), whole = try model.forward(feeds).outputs
        var diff: Float = 0, scale: Float = 0
        for (name, w) in whole {
            guard let s = split[name], s.shape == w.shape else { fail("run and forward disagree on output \(name)", code: 1) }
            let a = try s.floats(), b = try w.floats()
            for i in b.indices { diff = max(diff, abs(a[i] - b[i])); scale = max(scale, abs(b[i])) }
        }
        let splits = model.splitsBatch(inputShapes: model.inputs.map { feeds[$0.name]?.shape ?? [] })
        print(String(format: "run_vs_forward_max_abs_diff=%g output_max_abs=%g", diff, scale) + " batch_split=\(splits == true ? "yes" : "no")")
    }
}

/// --serve: the model stays loaded and times blocks of calls on request, so a peer script can
/// alternate them with its own calls milliseconds apart instead of a process start
/// apart (this host's speed drifts by tens of percent within seconds). Each stdin line "W N"
/// runs W untimed calls, then N timed ones, and answers one `times_ms=` line; "q" or end of
/// input exits.
@MainActor func serveBlocks(_ call: () throws -> Void) throws {
    print("ready")
    fflush(nil)
    while let line = readLine() {
        let parts = line.split(separator: " ").compactMap { Int($0) }
        guard parts.count == 2 else { return }
        for _ in 0..<max(0, parts[0]) { try call() }
        let times = try timedRuns(max(1, parts[1]), reps: 1, call)
        print("times_ms=" + times.map { String(format: "%.4f", $0) }.joined(separator: ","))
        fflush(nil)
    }
}

do {
    switch mode {
    case "gemm": try runGEMM()
    case "conv": try runConv()
    default: try runModel(path: first)
    }
} catch {
    FileHandle.standardError.write(Data("loupe-bench: error: \(error)\n".utf8))
    exit(1)
}
