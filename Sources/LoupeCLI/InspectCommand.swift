import ArgumentParser
import Foundation
import Loupe

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a model's inputs, outputs, operators, parameters and hookable values.",
        discussion: "Unsupported operators are listed first; the rest is shown anyway."
    )

    @Argument(help: "Path to an .onnx model.")
    var model: String

    @Option(name: .customLong("batch"), help: "Size used for symbolic dimensions when inferring shapes.")
    var batch: Int = 1

    @Flag(help: "List every hookable value (default: the first and last 40).")
    var all = false

    func run() throws {
        try CLIFailure.run {
            let graph = try ONNXModel.load(path: model)
            print(ModelSummary.header(graph, path: model))
            var compiled: Model?
            do {
                compiled = try Model(graph: graph)
                print("unsupported operators: none")
            } catch let GraphError.unsupportedOperators(list) {
                print("unsupported operators (\(list.count)) — Loupe cannot run this model yet:")
                for u in list { print("  \(u)") }
            }
            print(ModelSummary.io(graph))
            let params = graph.initializers.values.reduce(0) { $0 + ($1.dtype == .float32 ? $1.count : 0) }
            print("parameters: \(ModelSummary.grouped(params)) float32 (\(String(format: "%.1f", Double(params) * 4 / 1_048_576)) MiB)")
            let hist = graph.nodes.reduce(into: [String: Int]()) { $0[$1.opType, default: 0] += 1 }
            print("operators (\(graph.nodes.count) nodes): "
                  + hist.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            guard let m = compiled else { return }
            print("after folding: \(m.nodes.count) nodes run (\(m.foldedNodes.count) folded into constants)")
            let shapes = (try? m.inferShapes(defaultDim: batch)) ?? [:]
            let hookable = m.nodes.flatMap { n in n.outputs.filter { !$0.isEmpty }.map { ($0, n.opType) } }
            print("hookable values (\(hookable.count)) — name, shape (symbolic dims = \(batch)), producing op:")
            let shown = all || hookable.count <= 80 ? hookable : Array(hookable.prefix(40)) + [("…", "")] + Array(hookable.suffix(40))
            for (name, op) in shown {
                if name == "…" { print("  … (\(hookable.count - 80) more; --all lists them)"); continue }
                let s = shapes[name].map { "\($0)" } ?? "?"
                print("  \(name.padding(toLength: max(24, name.count), withPad: " ", startingAt: 0))  \(s.padding(toLength: 20, withPad: " ", startingAt: 0))  \(op)")
            }
        }
    }
}

enum ModelSummary {
    static func header(_ g: Graph, path: String) -> String {
        let producer = [g.metadata["producer_name"], g.metadata["producer_version"]].compactMap { $0 }.joined(separator: " ")
        let opsets = g.opsets.sorted { $0.key < $1.key }.map { "\($0.key.isEmpty ? "ai.onnx" : $0.key) \($0.value)" }.joined(separator: ", ")
        return "model: \(path)" + (producer.isEmpty ? "" : " (producer: \(producer))") + "\nopsets: \(opsets)"
    }

    static func io(_ g: Graph) -> String {
        func fmt(_ v: ValueInfo) -> String {
            let dims = v.shape.map { "[" + $0.map(\.description).joined(separator: ", ") + "]" } ?? "(shape not declared)"
            return "  \(v.name)  \(ONNXTypeName.name(v.elementType)) \(dims)"
        }
        return "inputs:\n" + g.inputs.map(fmt).joined(separator: "\n") + "\noutputs:\n" + g.outputs.map(fmt).joined(separator: "\n")
    }

    static func grouped(_ n: Int) -> String {
        let s = String(n)
        var out = ""
        for (i, c) in s.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return String(out.reversed())
    }
}

/// ONNX element type names for display.
enum ONNXTypeName {
    static func name(_ code: Int) -> String {
        let names = [1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string",
                     9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16"]
        return names[code] ?? "type\(code)"
    }
}
