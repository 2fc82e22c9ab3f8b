import Foundation
import Loupe

/// Runs the ONNX backend node tests (`<dir>/<test>/model.onnx` + `test_data_set_*/{input,output}_*.pb`)
/// for every test whose operators Loupe claims to support, and lists the rest as unsupported.
struct NodeSuite {
    struct Result {
        var name: String
        var ops: [String]
        var outcome: Outcome
    }
    enum Outcome {
        case passed
        case failed(String)
        case knownFailure(String)
        case unsupported([String])
    }

    let directory: String
    /// Test name → reason, for failures that are understood and documented.
    let knownFailures: [String: String]
    let verbose: Bool

    func run() -> [Result] {
        let fm = FileManager.default
        let names = ((try? fm.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { fm.fileExists(atPath: "\(directory)/\($0)/model.onnx") }
            .sorted()
        let tolerances = loadTolerances()
        var results: [Result] = []
        for name in names {
            let dir = "\(directory)/\(name)"
            var ops: [String] = []
            let outcome: Outcome
            do {
                let graph = try ONNXModel.load(path: "\(dir)/model.onnx")
                ops = Array(Set(graph.nodes.map(\.opType))).sorted()
                let missing = graph.nodes.filter { OperatorTable.factory(opType: $0.opType, domain: $0.domain) == nil }
                    .map { $0.domain.isEmpty ? $0.opType : "\($0.domain).\($0.opType)" }
                if !missing.isEmpty {
                    outcome = .unsupported(Array(Set(missing)).sorted())
                } else {
                    let (rtol, atol) = tolerances[name] ?? (1e-3, 1e-7)
                    outcome = check(graph: graph, dir: dir, rtol: rtol, atol: atol)
                }
            } catch ONNXError.unsupported(_, let message) {
                // A file feature Loupe does not read (string tensors, TYPE_PROTO attributes).
                outcome = .unsupported(["file feature: " + String(message.prefix(60))])
            } catch {
                outcome = .failed("load: \(error)")
            }
            switch outcome {
            case let .failed(why) where knownFailures[name] != nil:
                results.append(Result(name: name, ops: ops, outcome: .knownFailure("\(knownFailures[name] ?? "") [\(why.prefix(120))]")))
            case .passed where knownFailures[name] != nil:
                results.append(Result(name: name, ops: ops, outcome: .failed("listed as a known failure but passes: remove it from the list")))
            default:
                results.append(Result(name: name, ops: ops, outcome: outcome))
            }
            if verbose, case let .failed(why) = results[results.count - 1].outcome { print("FAIL \(name): \(why)") }
        }
        return results
    }

    /// Per-test tolerances from `index.json` written by tools/onnx_conformance/prepare.py.
    func loadTolerances() -> [String: (Double, Double)] {
        guard let data = FileManager.default.contents(atPath: "\(directory)/index.json"),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let tests = obj["tests"] as? [[String: Any]] else { return [:] }
        var out: [String: (Double, Double)] = [:]
        for t in tests {
            if let n = t["name"] as? String, let r = t["rtol"] as? Double, let a = t["atol"] as? Double { out[n] = (r, a) }
        }
        return out
    }

    func check(graph: Graph, dir: String, rtol: Double, atol: Double) -> Outcome {
        let fm = FileManager.default
        let sets = ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("test_data_set_") }.sorted()
        guard !sets.isEmpty else { return .failed("no test_data_set_* folder") }
        do {
            let model = try Model(graph: graph)
            for set in sets {
                let sdir = "\(dir)/\(set)"
                var feeds: [String: Tensor] = [:]
                let inputNames = model.inputs.map(\.name)
                for (i, name) in inputNames.enumerated() {
                    let path = "\(sdir)/input_\(i).pb"
                    guard fm.fileExists(atPath: path) else { continue }
                    feeds[name] = try ONNXTensor.load(path: path).tensor
                }
                // Node tests feed optional inputs positionally and may omit trailing ones.
                let outputs = try runAllowingNonFinite(model, feeds)
                for (j, info) in graph.outputs.enumerated() {
                    let path = "\(sdir)/output_\(j).pb"
                    guard fm.fileExists(atPath: path) else { continue }
                    let expected = try ONNXTensor.load(path: path).tensor
                    guard let got = outputs[info.name] else { return .failed("output \(info.name) missing") }
                    if let why = Compare.mismatch(got, expected, rtol: rtol, atol: atol) {
                        return .failed("\(set) output \(info.name): \(why)")
                    }
                }
            }
            return .passed
        } catch {
            return .failed("\(error)")
        }
    }

    /// Node tests legitimately feed NaN and infinity (IsNaN, Max with NaN, ...), which the
    /// public `run` rejects as bad user input, so feed through a hook-free forward that skips
    /// the finiteness check.
    func runAllowingNonFinite(_ model: Model, _ feeds: [String: Tensor]) throws -> [String: Tensor] {
        try model.forward(feeds, hooks: .none, recording: nil, allowNonFinite: true).outputs
    }
}

/// numpy.testing.assert_allclose semantics: |got − want| ≤ atol + rtol·|want|, NaN equal NaN.
enum Compare {
    static func mismatch(_ got: Tensor, _ want: Tensor, rtol: Double, atol: Double) -> String? {
        guard got.shape == want.shape else { return "shape \(got.shape), expected \(want.shape)" }
        let a = got.doubles, b = want.doubles
        var worst = 0.0, worstIndex = -1
        for i in 0..<a.count {
            if a[i].isNaN && b[i].isNaN { continue }
            if a[i] == b[i] { continue }
            let err = abs(a[i] - b[i])
            let excess = err - (atol + rtol * abs(b[i]))
            if excess > 0 || err.isNaN, excess > worst || worstIndex < 0 { worst = excess; worstIndex = i }
        }
        guard worstIndex >= 0 else { return nil }
        return "element \(worstIndex): got \(a[worstIndex]), expected \(b[worstIndex]) (rtol \(rtol), atol \(atol))"
    }
}
