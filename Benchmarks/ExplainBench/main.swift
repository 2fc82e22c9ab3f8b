import Foundation
import Loupe

// loupe-explain-bench: times one Loupe explainer on an image model so
// Benchmarks/peers/bench_explainers.py can print ratios against Captum and pytorch-grad-cam
// measured in the same script run. Build release:
//
//   swift build -c release --product loupe-explain-bench
//   .build/release/loupe-explain-bench MODEL.onnx --method gradcam --layer NAME --class 7 \
//       [--input x.f32] [--runs 5] [--warmup 1] [--batch-size 32] [--steps 50] [--samples 25] \
//       [--threads 2] [--dump out.f32] [--interleave forward]
//
// Methods: forward, layer (the forward up to --layer, what Eigen-CAM runs), saliency, ig, smoothgrad,
// gradcam, gradcampp, scorecam, eigencam; eigencam-post (diagnostic: Eigen-CAM's work after the
// forward pass, on the layer captured once).
// Every timed call produces what the peer's call returns: gradient methods the attribution at
// the input (IG with its convergence delta, as Captum is asked for), CAM methods
// pytorch-grad-cam's final image (ReLU, min-max, resize to the input, min-max).
//
// --input reads raw little-endian float32 of shape (1, 3, H, W) (H = W = 224 unless --size);
// without it a fixed pseudo-random image is used. --dump writes the last result as raw float32
// (the attribution, or for CAMs the layer-resolution map before ReLU, pytorch-grad-cam's
// get_cam_image, and the final image to <file>.image) so the script can compare numbers with
// the peer.
//
// Prints `median_ms=<float> min_ms=... max_ms=...` — the line the peer scripts parse.
// --interleave M times method M call for call with the main one (after its own warm-up; the
// order within a pair alternates) and
// adds `interleaved_median_ms=` and `interleaved_times_ms=` lines: Eigen-CAM's target is a ratio
// to Loupe's own forward, and this host's speed drifts by tens of percent between processes.

func fail(_ message: String, code: Int32 = 2) -> Never {
    FileHandle.standardError.write(Data("loupe-explain-bench: \(message)\n".utf8))
    exit(code)
}

var args = Array(CommandLine.arguments.dropFirst())
guard let path = args.first, !path.hasPrefix("-") else {
    fail("usage: loupe-explain-bench MODEL.onnx --method M --layer NAME --class C [--input F] [--runs R] [--warmup W] [--batch-size N] [--steps S] [--samples S] [--stdev F] [--threads T] [--size S] [--dump F] [--interleave M]")
}
args.removeFirst()
var method = "", layer = "", inputPath: String?, dumpPath: String?
var cls = 0, runs = 5, warmup = 1, steps = 50, samples = 25, size = 224
var batchSize: Int?, threads: Int?, interleave: String?
var stdev: Float = 1
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
    case "--method": method = value()
    case "--layer": layer = value()
    case "--class": cls = int()
    case "--input": inputPath = value()
    case "--dump": dumpPath = value()
    case "--runs": runs = max(1, int())
    case "--warmup": warmup = max(1, int())
    case "--batch-size": batchSize = int()
    case "--steps": steps = int()
    case "--samples": samples = int()
    case "--stdev":
        let v = value()
        guard let f = Float(v) else { fail("--stdev expects a number, got '\(v)'") }
        stdev = f
    case "--threads": threads = int()
    case "--interleave": interleave = value()
    case "--size": size = int()
    default: fail("unknown option \(a)")
    }
}
if let threads { Kernels.threads = threads }

func loadInput(_ inputPath: String?, size: Int) throws -> Tensor {
    let shape = [1, 3, size, size], n = shape.reduce(1, *)
    guard let inputPath else {
        var state: UInt64 = 12345
        return try Tensor(shape: shape, floats: (0..<n).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(state >> 40) - (1 << 23)) / Float(1 << 23)
        })
    }
    let data = try Data(contentsOf: URL(fileURLWithPath: inputPath))
    guard data.count == n * 4 else { fail("\(inputPath) has \(data.count) bytes; expected \(n * 4) (float32 \(shape))") }
    var floats = [Float](repeating: 0, count: n)
    _ = floats.withUnsafeMutableBytes { data.copyBytes(to: $0) }
    return try Tensor(shape: shape, floats: floats)
}

func dump(_ t: Tensor, to file: String) throws {
    let f = try t.floats()
    try f.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: file))
}

do {
    let model = try Model(graph: try ONNXModel.load(path: path))
    let x = try loadInput(inputPath, size: size)
    let input = model.inputs[0].name
    let camMethods: [String: CAM.Method] = [
        "gradcam": .gradCAM, "gradcampp": .gradCAMPlusPlus, "eigencam": .eigenCAM,
        "scorecam": .scoreCAM(batchSize: batchSize ?? 32),
    ]
    let target = Target.index(cls)
    var image: Tensor?   // a CAM's final image, what pytorch-grad-cam returns
    func call(_ method: String) throws -> () throws -> Tensor {
        switch method {
        case "forward":
            return {
                guard let y = try model.run([input: x])[model.outputs[0].name] else { fail("no output", code: 1) }
                return y
            }
        case "layer":
            // The forward pass Eigen-CAM runs: up to the layer, without the classifier head.
            var hooks = Hooks()
            hooks.capture(try model.hook(layer))
            return {
                guard let a = try model.forward([input: x], hooks: hooks, outputs: []).captured[layer] else { fail("layer not captured", code: 1) }
                return a
            }
        case "eigencam-post":
            // Diagnostic: Eigen-CAM's work past the forward pass alone (principal axis of the
            // layer captured once, then the final image), the part its target weighs against
            // the classifier head it skips.
            var hooks = Hooks()
            hooks.capture(try model.hook(layer))
            guard let a = try model.forward([input: x], hooks: hooks, outputs: []).captured[layer] else { fail("layer not captured", code: 1) }
            return {
                guard case let .map(raw) = try CAM.EigenCAM().readout(activations: a, gradients: nil, classes: [cls]) else {
                    fail("Eigen-CAM did not return a map", code: 1)
                }
                image = try CAM.scaledLikePytorchGradCAM(raw, height: size, width: size)
                return raw
            }
        case "saliency":
            return { try Saliency().explain(model, input: x, target: target).attribution }
        case "ig":
            let ig = IntegratedGradients(baseline: .zeros, steps: steps, rule: .gaussLegendre)
            let options = ExplainOptions(batchSize: batchSize ?? steps)
            return { try ig.explain(model, input: x, target: target, options: options).attribution }
        case "smoothgrad":
            let sg = NoiseTunnel(Saliency(), kind: .smoothGrad, samples: samples, stdev: stdev, seed: 0)
            let options = ExplainOptions(batchSize: batchSize ?? samples)
            return { try sg.explain(model, input: x, target: target, options: options).attribution }
        default:
            guard let m = camMethods[method] else {
                fail("unknown method '\(method)' (forward, layer, eigencam-post, saliency, ig, smoothgrad, \(camMethods.keys.sorted().joined(separator: ", ")))")
            }
            guard !layer.isEmpty else { fail("--layer is required for CAM methods") }
            return {
                let r = try CAM.explain(model: model, input: x, layer: layer, classes: [cls], method: m)
                image = try CAM.scaledLikePytorchGradCAM(r.raw, height: size, width: size)
                return r.raw
            }
        }
    }
    let once = try call(method)
    // The method to alternate with, call for call, so both see the same host load.
    let other = try interleave.map { try call($0) }
    var otherTimes: [Double] = []
    // At least one untimed call: it loads lazily initialised kernels and the thread pool.
    var last = try once()
    for _ in 1..<max(1, warmup) { last = try once() }
    if let other { for _ in 0..<max(1, warmup) { _ = try other() } }
    func timed(_ f: () throws -> Tensor) rethrows -> (Tensor, Double) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let y = try f()
        return (y, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
    }
    var times: [Double] = []
    for i in 0..<runs {
        // With --interleave the pair's order alternates, so neither side always runs on the
        // caches the other left.
        if let other, i % 2 == 1 { otherTimes.append(try timed(other).1) }
        let (y, t) = try timed(once)
        last = y
        times.append(t)
        if let other, i % 2 == 0 { otherTimes.append(try timed(other).1) }
    }
    if let dumpPath {
        try dump(last, to: dumpPath)
        if let image { try dump(image, to: dumpPath + ".image") }
    }
    func median(_ t: [Double]) -> Double {
        let s = t.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
    print(String(format: "median_ms=%.3f min_ms=%.3f max_ms=%.3f runs=%d method=%@ threads=%d", median(times), times.min() ?? 0,
                 times.max() ?? 0, runs, method, Kernels.threads))
    print("times_ms=" + times.map { String(format: "%.3f", $0) }.joined(separator: ","))
    if let interleave {
        print(String(format: "interleaved_median_ms=%.3f interleaved_min_ms=%.3f method=%@", median(otherTimes), otherTimes.min() ?? 0, interleave))
        print("interleaved_times_ms=" + otherTimes.map { String(format: "%.3f", $0) }.joined(separator: ","))
    }
} catch {
    fail("error: \(error)", code: 1)
}
