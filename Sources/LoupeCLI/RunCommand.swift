import ArgumentParser
import Foundation
import Loupe

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a model on .npy inputs; print top-k classes for classifiers and save outputs.",
        discussion: """
        One input:   loupe run model.onnx --input x.npy
        Several:     loupe run model.onnx --input input_ids=ids.npy --input attention_mask=mask.npy
        """
    )

    @Argument(help: "Path to an .onnx model.")
    var model: String

    @Option(name: .shortAndLong, help: "An input as PATH.npy (single-input models) or NAME=PATH.npy. Repeatable.")
    var input: [String] = []

    @Option(name: .shortAndLong, help: "Write the first output to this .npy file (or every output into this directory if it ends with '/').")
    var output: String?

    @Option(help: "How many classes to print for classifier outputs.")
    var top: Int = 5

    @Option(help: "A text file with one class label per line.")
    var labels: String?

    func run() throws {
        try CLIFailure.run {
            guard top >= 0 else { throw CLIError("--top must be ≥ 0, got \(top)") }
            let m = try InFile.loadModel(model)
            let feeds = try readFeeds(for: m)
            let outputs = try m.run(feeds)
            let labelList = try labels.map { path -> [String] in
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CLIError("cannot read labels file \(path)") }
                return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            }
            for info in m.outputs {
                guard let t = outputs[info.name] else { continue }
                print("\(info.name): \(t.dtype) \(t.shape)")
                if t.dtype == .float32, t.rank == 2, t.shape[1] > 1, top > 0 {
                    try TopK.print(t, k: top, labels: labelList)
                }
            }
            if let output { try write(outputs, m, to: output) }
        }
    }

    func readFeeds(for m: Model) throws -> [String: Tensor] {
        let names = m.inputs.map(\.name)
        var feeds: [String: Tensor] = [:]
        for spec in input {
            if let eq = spec.firstIndex(of: "="), !spec.hasSuffix(".npy") || names.contains(String(spec[..<eq])) {
                let name = String(spec[..<eq])
                guard names.contains(name) else {
                    throw CLIError("--input \(spec): model has no input '\(name)'; inputs are \(names.joined(separator: ", "))")
                }
                feeds[name] = try Tensor.readNPY(path: String(spec[spec.index(after: eq)...]))
            } else {
                guard names.count == 1 else {
                    throw CLIError("model has \(names.count) inputs (\(names.joined(separator: ", "))): give each as --input NAME=PATH.npy")
                }
                feeds[names[0]] = try Tensor.readNPY(path: spec)
            }
        }
        if feeds.isEmpty { throw CLIError("no input given: use --input PATH.npy (model inputs: \(names.joined(separator: ", ")))") }
        return feeds
    }

    func write(_ outputs: [String: Tensor], _ m: Model, to path: String) throws {
        if path.hasSuffix("/") {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            for (name, t) in outputs {
                let safe = name.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" ? $0 : "_" }
                try t.writeNPY(path: path + String(safe) + ".npy")
            }
        } else if let first = m.outputs.first, let t = outputs[first.name] {
            try t.writeNPY(path: path)
        }
    }
}

/// Top-k printing of classifier outputs (softmax over the class axis).
enum TopK {
    static func print(_ logits: Tensor, k: Int, labels: [String]?) throws {
        let v = try logits.floats()
        let (b, c) = (logits.shape[0], logits.shape[1])
        for i in 0..<b {
            let row = Array(v[(i * c)..<((i + 1) * c)])
            let mx = row.max() ?? 0
            let e = row.map { Foundation.exp(Double($0 - mx)) }
            let z = e.reduce(0, +)
            let order = row.indices.sorted { row[$0] > row[$1] }.prefix(min(k, c))
            Swift.print("  [\(i)] " + order.map { j in
                let name = labels.flatMap { j < $0.count && !$0[j].isEmpty ? $0[j] : nil } ?? "class \(j)"
                return "\(name) \(String(format: "%.3f", e[j] / z)) (logit \(String(format: "%.3f", row[j])))"
            }.joined(separator: ", "))
        }
    }
}
