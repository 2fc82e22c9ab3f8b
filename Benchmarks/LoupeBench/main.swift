import Foundation
import Loupe

// loupe-bench: times Loupe on one model so Benchmarks/peers/*.py can print ratios against
// PyTorch and onnxruntime measured in the same run. Build release:
//
//   swift build -c release --product loupe-bench
//   .build/release/loupe-bench MODEL.onnx [--batch 16] [--runs 10] [--warmup 2] [--backward]
//
// Prints `median_ms=<float>` (and min/max) — the line the peer scripts parse.

var args = Array(CommandLine.arguments.dropFirst())
guard let path = args.first, !path.hasPrefix("-") else {
    FileHandle.standardError.write(Data("usage: loupe-bench MODEL.onnx [--batch N] [--runs R] [--warmup W] [--backward]\n".utf8))
    exit(2)
}
args.removeFirst()
var batch = 1, runs = 10, warmup = 2
var backward = false
while !args.isEmpty {
    let a = args.removeFirst()
    func int() -> Int { Int(args.isEmpty ? "" : args.removeFirst()) ?? 0 }
    switch a {
    case "--batch": batch = int()
    case "--runs": runs = max(1, int())
    case "--warmup": warmup = int()
    case "--backward": backward = true
    default:
        FileHandle.standardError.write(Data("unknown option \(a)\n".utf8)); exit(2)
    }
}

do {
    let model = try Model(graph: try ONNXModel.load(path: path))
    var feeds: [String: Tensor] = [:]
    var state: UInt64 = 12345
    for info in model.inputs {
        let shape = (info.shape ?? []).enumerated().map { i, d in d.value ?? (i == 0 ? batch : 1) }
        let n = shape.reduce(1, *)
        if info.elementType == 7 {
            feeds[info.name] = try Tensor(shape: shape, ints: (0..<n).map { Int64($0 % 100) })
        } else {
            feeds[info.name] = try Tensor(shape: shape, floats: (0..<n).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(state >> 40) - (1 << 23)) / Float(1 << 23)
            })
        }
    }
    let input = model.inputs[0].name
    let outName = model.outputs[0].name
    func once() throws {
        if backward {
            let pass = try model.forward(feeds, recording: .gradient)
            guard let y = pass.outputs[outName] else { return }
            _ = try pass.backward(seeds: [outName: Tensor(zeros: y.shape, value: 1)], wrt: [input])
        } else {
            _ = try model.run(feeds)
        }
    }
    for _ in 0..<warmup { try once() }
    var times: [Double] = []
    for _ in 0..<runs {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try once()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
    }
    times.sort()
    let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
    print(String(format: "median_ms=%.3f min_ms=%.3f max_ms=%.3f runs=%d batch=%d backward=%@", median, times[0], times[times.count - 1],
                 runs, batch, backward ? "yes" : "no"))
} catch {
    FileHandle.standardError.write(Data("loupe-bench: error: \(error)\n".utf8))
    exit(1)
}
