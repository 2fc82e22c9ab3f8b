import Foundation
import Loupe
#if canImport(Glibc)
import Glibc
#endif

/// Runs `loupe explain`: loads the model and inputs, picks the layer and target, runs each
/// method and writes the output contract (see ``ExplainCommand``).
struct ExplainRunner {
    var options: ExplainOptions
    var modelPath: String
    var inputs: [String]
    var isDemo: Bool

    struct Formats { var png = false, npy = false, json = false, html = false, svg = false }

    func run() throws {
        let formats = try parseFormats(options.format)
        let methods = try ExplainMethods.parse(options.method)
        guard options.top >= 0 else { throw CLIError("--top must be ≥ 0, got \(options.top)") }
        guard (0...1).contains(options.alpha) else { throw CLIError("--alpha must be in 0...1, got \(options.alpha)") }
        if let b = options.batchSize, b <= 0 { throw CLIError("--batch-size must be positive, got \(b)") }
        var chosenMap: Colormap?
        if let name = options.colormap {
            guard let c = Colormap(rawValue: name.lowercased()) else {
                throw CLIError("unknown colormap '\(name)'; valid: \(Colormap.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            chosenMap = c
        }
        // Unsigned maps (CAMs, |gradient|) on jet; signed relevance on a diverging map centred at 0.
        let colormap = chosenMap ?? .jet
        func colormapFor(_ scaling: HeatmapScaling) -> Colormap { chosenMap ?? (scaling == .signed ? .bwr : .jet) }

        let model = try InFile.loadModel(modelPath)
        guard model.inputs.count == 1 else {
            throw CLIError("\(modelPath): explain needs a model with one input, this one has \(model.inputs.count) (\(model.inputs.map(\.name).joined(separator: ", ")))")
        }
        let (preprocess, preprocessSource, sidecar) = try loadPreprocess(model)
        let labels = try loadLabels(preprocess: preprocess, sidecar: sidecar)
        let files = try ExplainInputs.expand(inputs)
        let loaded = try ExplainInputs.load(files, preprocess: preprocess)

        try FileManager.default.createDirectory(atPath: options.out, withIntermediateDirectories: true)
        let progress = Progress(total: loaded.count * methods.count,
                                enabled: !options.quiet && isatty(STDERR_FILENO) == 1)
        var layerCache: [[Int]: (String, String)] = [:]
        // Models exported with a fixed batch of 1 cannot take the batched masked copies of
        // Score-CAM / Ablation-CAM: run them one copy per forward pass instead.
        var report = ExplainReport(modelPath: modelPath, colormap: colormap, alpha: options.alpha)
        var failures: [MethodFailure] = []
        let fixedBatchOfOne = model.inputs[0].shape?.first?.value == 1

        for input in loaded {
            let outName = model.outputs.first?.name ?? ""
            let forward = try model.forward([model.inputs[0].name: input.tensor])
            guard let logits = forward.outputs[outName], logits.dtype == .float32, logits.rank == 2, logits.shape[0] == 1 else {
                throw CLIError("\(modelPath): explain needs a classifier whose first output is (1, classes) float logits; '\(outName)' is \(forward.outputs[outName].map { "\($0.dtype) \($0.shape)" } ?? "missing")")
            }
            let scores = try logits.floats()
            let target = try resolveTarget(options.target, scores: scores, labels: labels)

            var layer = ""
            var layerRule = "none"
            // A model without a spatial layer still gets its input-space methods.
            var layerError: Error?
            if methods.contains(where: \.needsLayer) {
                if let l = options.layer {
                    _ = try model.hook(l)  // unknown names: error with close names
                    layer = l
                    layerRule = "--layer"
                } else if let cached = layerCache[input.tensor.shape] {
                    (layer, layerRule) = cached
                } else {
                    do {
                        layer = try DefaultLayer.find(model: model, input: input.tensor)
                        layerRule = DefaultLayer.rule
                        layerCache[input.tensor.shape] = (layer, layerRule)
                    } catch let e as CLIError {
                        layerError = e
                    }
                }
            }

            var methodRecords: [JSONValue] = []
            var reportMethods: [ExplainReport.MethodEntry] = []
            var written: [String] = []
            for method in methods {
                progress.step("\(input.stem) \(method.name)")
                let request = ExplainRequest(model: model, input: input.tensor, target: target.index, layer: layer,
                                             batchSize: fixedBatchOfOne ? 1 : options.batchSize, steps: options.steps,
                                             samples: options.samples, noiseLevel: options.noiseLevel, seed: options.seed,
                                             baseline: options.baseline)
                let start = DispatchTime.now().uptimeNanoseconds
                let outcome: ExplainOutcome
                do {
                    if method.needsLayer, let layerError { throw layerError }
                    outcome = try method.explain(request)
                } catch {
                    // A method that cannot run on this model (a CAM without a pooled head, no
                    // gradient through an integer op) is reported and skipped: the other methods'
                    // files and the report are still written, and the exit status says it failed.
                    failures.append(MethodFailure(input: input.path, method: method.name, underlying: error))
                    methodRecords.append(.object(["method": .string(method.name), "reference": .string(method.reference),
                                                  "error": .string("\(error)")]))
                    reportMethods.append(.init(name: method.name, reference: method.reference, overlay: nil, min: 0, max: 0,
                                               shape: [], seconds: 0, error: "\(error)"))
                    continue
                }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                var files: [String: JSONValue] = [:]
                let base = (options.out as NSString).appendingPathComponent("\(input.stem).\(method.name)")
                if formats.npy {
                    try outcome.map.writeNPY(path: base + ".npy")
                    files["npy"] = .string(base + ".npy")
                    written.append(base + ".npy")
                }
                if outcome.scaling == .signed { report.signedColormap = colormapFor(.signed) }
                var overlay: Image?
                if formats.png || formats.html || formats.svg, let picture = input.picture {
                    let canvas = Overlay.enlarged(picture, minSide: 224)
                    overlay = try Heatmap.render(outcome.display ?? outcome.map, over: canvas, colormap: colormapFor(outcome.scaling), scaling: outcome.scaling,
                                                 clipPercentile: 100, alpha: options.alpha)
                }
                if formats.png, let overlay {
                    try overlay.write(toFile: base + ".png")
                    files["png"] = .string(base + ".png")
                    written.append(base + ".png")
                }
                let values = try (outcome.display ?? outcome.map).floats()
                reportMethods.append(.init(name: method.name, reference: method.reference, overlay: overlay,
                                           min: values.min() ?? 0, max: values.max() ?? 0, shape: outcome.map.shape, seconds: seconds))
                var params = outcome.parameters
                params["target"] = .int(target.index)
                methodRecords.append(.object([
                    "method": .string(method.name),
                    "reference": .string(method.reference),
                    "parameters": .object(params),
                    "wallSeconds": .double((seconds * 1e6).rounded() / 1e6),
                    "map": .object(["shape": .ints(outcome.map.shape), "dtype": .string("float32"),
                                    "min": .double(Double(values.min() ?? 0)), "max": .double(Double(values.max() ?? 0)),
                                    "scaling": .string(outcome.scaling.rawValue)]),
                    "files": .object(files),
                ]))
            }

            let top = TopPredictions.of(scores, k: options.top, labels: labels)
            if formats.json {
                let record: JSONValue = .object([
                    "input": .string(input.path),
                    "inputKind": .string(input.kind),
                    "inputShape": .ints(input.tensor.shape),
                    "model": .string(modelPath),
                    "demo": .bool(isDemo),
                    "preprocess": input.kind == "image" ? preprocessJSON(preprocess, source: preprocessSource) : .object(["preset": .string("none")]),
                    "predictions": .array(top.map { p in .object(["index": .int(p.index), "label": p.label.map(JSONValue.string) ?? .null,
                                                                   "probability": .double(p.probability), "logit": .double(Double(p.logit))]) }),
                    "target": .object(["index": .int(target.index), "label": labels.flatMap { target.index < $0.count ? .string($0[target.index]) : nil } ?? .null,
                                       "requested": .string(options.target)]),
                    "layer": layer.isEmpty ? .null : .object(["name": .string(layer), "rule": .string(layerRule)]),
                    "methods": .array(methodRecords),
                ])
                let path = (options.out as NSString).appendingPathComponent("\(input.stem).json")
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                do { try encoder.encode(record).write(to: URL(fileURLWithPath: path)) } catch {
                    throw CLIError("\(path): cannot write: \(error.localizedDescription)")
                }
                written.append(path)
            }
            let entry = ExplainReport.InputEntry(path: input.path, picture: input.picture.map { Overlay.enlarged($0, minSide: 224) },
                                                 predictions: top,
                                                 target: labels.flatMap { target.index < $0.count ? $0[target.index] : nil } ?? "class \(target.index)",
                                                 layer: layer, methods: reportMethods)
            if formats.html { report.entries.append(entry) }
            if formats.svg {
                let path = (options.out as NSString).appendingPathComponent("\(input.stem).montage.svg")
                let text = try ExplainMontage.svg(entry, colormap: colormap, signedColormap: report.signedColormap)
                do { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) } catch {
                    throw CLIError("\(path): cannot write: \(error.localizedDescription)")
                }
                written.append(path)
            }
            progress.clear()
            let best = top.first.map { "\($0.label ?? "class \($0.index)") \(String(format: "%.3f", $0.probability))" } ?? "-"
            let targetName = labels.flatMap { target.index < $0.count ? $0[target.index] : nil } ?? "class \(target.index)"
            print("\(input.path): top \(best); explained \(targetName) [\(target.index)]\(layer.isEmpty ? "" : " at \(layer)")")
        }
        progress.clear()
        if formats.html {
            let path = (options.out as NSString).appendingPathComponent("report.html")
            try report.write(to: path)
            print("report: \(path)")
        }
        print("wrote \(loaded.count) input(s) × \(methods.count) method(s) to \(options.out)/")
        // One line per failed method run; the last is the command's error (and exit status).
        if let last = failures.last {
            for f in failures.dropLast() { FileHandle.standardError.write(Data("loupe: error: \(f)\n".utf8)) }
            throw last
        }
    }

    func parseFormats(_ s: String) throws -> Formats {
        var f = Formats()
        for item in s.lowercased().split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            switch item {
            case "png": f.png = true
            case "npy": f.npy = true
            case "json": f.json = true
            case "html": f.html = true
            case "svg": f.svg = true
            default: throw CLIError("unknown format '\(item)' in --format; valid: png, npy, json, html, svg")
            }
        }
        guard f.png || f.npy || f.json || f.html || f.svg else { throw CLIError("--format names no output; valid: png, npy, json, html, svg") }
        return f
    }

    /// The model's sidecar when present, else ``DefaultPreprocess``.
    func loadPreprocess(_ model: Model) throws -> (Preprocess?, String, String?) {
        let sidecar = Preprocess.sidecarPath(forModel: modelPath)
        if FileManager.default.fileExists(atPath: sidecar) {
            do { return (try Preprocess(contentsOfFile: sidecar), sidecar, sidecar) } catch { throw CLIError("\(error)") }
        }
        return (DefaultPreprocess.forModel(model), "default from the model's input shape (no \(sidecar))", nil)
    }

    func loadLabels(preprocess: Preprocess?, sidecar: String?) throws -> [String]? {
        let path = options.labels ?? sidecar.flatMap { preprocess?.labelsPath(relativeToSidecar: $0) }
        guard let path else { return nil }
        do { return try Preprocess.readLabels(path: path) } catch { throw CLIError("\(error)") }
    }

    func preprocessJSON(_ p: Preprocess?, source: String) -> JSONValue {
        guard let p else { return .null }
        var o: [String: JSONValue] = ["source": .string(source), "channels": .int(p.channels), "grayscale": .bool(p.grayscale)]
        if let r = p.resize { o["resize"] = .int(r) }
        if let c = p.crop { o["crop"] = .ints(c) }
        if let m = p.mean { o["mean"] = .array(m.map { .double(Double("\($0)") ?? Double($0)) }) }
        if let s = p.std { o["std"] = .array(s.map { .double(Double("\($0)") ?? Double($0)) }) }
        return .object(o)
    }

    /// `top` → the arg-max; an integer → that index; otherwise a label (exact, then
    /// case-insensitive). Out-of-range indices and unknown labels are one-line errors.
    func resolveTarget(_ spec: String, scores: [Float], labels: [String]?) throws -> (index: Int, rule: String) {
        let n = scores.count
        if spec.lowercased() == "top" {
            let i = scores.indices.max { scores[$0] < scores[$1] } ?? 0
            return (i, "top")
        }
        if let i = Int(spec) {
            guard i >= 0, i < n else { throw CLIError("--target \(i) is out of range: the model has \(n) classes (0...\(n - 1))") }
            return (i, "index")
        }
        guard let labels else {
            throw CLIError("--target '\(spec)' is not 'top' or a class index, and the model has no labels file to look it up in (use --labels FILE)")
        }
        if let i = labels.firstIndex(of: spec) ?? labels.firstIndex(where: { $0.lowercased() == spec.lowercased() }) {
            guard i < n else { throw CLIError("--target '\(spec)' is label \(i) but the model has only \(n) classes") }
            return (i, "label")
        }
        let close = Suggest.closest(to: spec, in: labels)
        throw CLIError("--target '\(spec)' is not a label of this model" + (close.isEmpty ? "" : "; did you mean \(close.map { "'\($0)'" }.joined(separator: ", "))?"))
    }
}

/// The default CAM layer.
enum DefaultLayer {
    static let rule = "default: the last spatial value (a (N, C, h, w), channels-last (N, h, w, C) or 3-D (N, C, D, h, w) feature map, or (N, k+h·w, C) vision-transformer tokens, k = 1, 2 or 5 leading class/distillation/register tokens) that the target's gradient reaches, in execution order"

    static let mapMakers: Set<String> = ["Conv", "ConvTranspose", "MaxPool", "AveragePool", "Resize", "Upsample"]
    static let mapKeepers: Set<String> = ["Relu", "Clip", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid",
                                          "HardSwish", "Tanh", "Mish", "Softplus", "Gelu", "Erf", "Mul", "Add", "Sub", "Div",
                                          "BatchNormalization", "InstanceNormalization", "Identity", "Dropout", "Concat", "Pad"]
    /// Token tensors considered: the residual stream (Add) and its normalisations, i.e. block
    /// boundaries a user would name, not values inside attention.
    static let tokenOps: Set<String> = ["LayerNormalization", "Add"]

    /// The last spatial value the explained logit depends on. Candidates are, in execution
    /// order, rank-4 values with h·w > 1 that are not attention tensors (for a CNN classifier
    /// the feature map right before global pooling) and token tensors (N, k+h·w, C) (a ViT's
    /// blocks). One forward and one backward from the top logit find the last candidate whose
    /// gradient is not zero on the spatial positions: a ViT's final LayerNorm feeds only the
    /// class token to the head, so its patch tokens get no gradient and the last block's
    /// attention input is chosen instead (pytorch-grad-cam's advice for ViTs).
    static func find(model: Model, input: Tensor) throws -> String {
        let inputName = model.inputs[0].name
        let shapes = try model.inferShapes(inputShapes: [inputName: input.shape])
        let producerNode = Dictionary(model.nodes.flatMap { n in n.outputs.map { ($0, n) } }, uniquingKeysWith: { a, _ in a })
        let batch = input.shape.first ?? 1
        // Feature maps: rank-4 values made by a convolution or pooling, or by an element-wise,
        // normalisation or concatenation op from a feature map of the same spatial size.
        // Attention tensors (N, heads, T, T) come from MatMul/Reshape/Transpose and never qualify.
        var feature = Set<String>()
        for node in model.nodes {
            for o in node.outputs where !o.isEmpty {
                // (N, C, h, w) maps, and (N, C, D, h, w) maps of video and volume networks.
                guard let s = shapes[o], s.count == 4 || s.count == 5 else { continue }
                if mapMakers.contains(node.opType) {
                    feature.insert(o)
                } else if mapKeepers.contains(node.opType),
                          node.inputs.contains(where: { feature.contains($0) && shapes[$0].map { Array($0.dropFirst(2)) } == Array(s.dropFirst(2)) }) {
                    feature.insert(o)
                }
            }
        }
        // Rank-4 values traced to a layout: also the channels-last stages of a Swin
        // Transformer and the permuted copies of them (the graph's own Transposes).
        let layouts = model.featureMapLayouts(shapes: shapes)
        var candidates: [String] = []
        for name in model.hookableValues {
            guard let s = shapes[name], s.first == batch else { continue }
            let layout = layouts[name] ?? (feature.contains(name) ? .channelsFirst : nil)
            if s.count == 4, let layout, (layout == .channelsFirst ? s[2] * s[3] : s[1] * s[2]) > 1 {
                candidates.append(name)
            } else if s.count == 5, feature.contains(name), s[2] * s[3] * s[4] > 1 {
                candidates.append(name)
            } else if s.count == 3, CAM.Layout.isSpatial(s), let node = producerNode[name], tokenOps.contains(node.opType),
                      node.opType != "Add" || node.inputs.allSatisfy({ shapes[$0] == s }) {
                // An Add counts only as a residual add (x + f(x), operands of the output's
                // shape), not a Linear layer's bias add.
                candidates.append(name)
            }
        }
        guard !candidates.isEmpty else {
            throw CLIError("the model has no spatial layer ((N, C, h, w) feature map or (N, k+h·w, C) tokens) for a CAM; name a layer with --layer")
        }
        let recent = Array(candidates.suffix(48))
        guard let outName = model.outputs.first?.name else { return recent[recent.count - 1] }
        let pass = try model.forward([inputName: input], recording: .gradient)
        guard let logits = pass.outputs[outName], logits.rank == 2, logits.count > 0 else { return recent[recent.count - 1] }
        let k = logits.shape[1]
        let v = try logits.floats()
        var seed = [Float](repeating: 0, count: logits.count)
        for b in 0..<logits.shape[0] {
            let row = v[(b * k)..<((b + 1) * k)]
            if let best = row.indices.max(by: { row[$0] < row[$1] }) { seed[best] = 1 }
        }
        // A model with no gradient path (a quantized network: integers between the layers) has
        // no answer to "which map does the logit's gradient reach": take the last candidate.
        let grads: [String: Tensor]
        do {
            grads = try pass.backward(seeds: [outName: try Tensor(shape: logits.shape, floats: seed)], wrt: recent)
        } catch GraphError.notDifferentiable {
            return recent[recent.count - 1]
        }
        for name in recent.reversed() {
            guard let g = grads[name], let s = shapes[name], let values = try? g.floats() else { continue }
            // Tokens: skip the class token (index 0 of each sample).
            let reaches: Bool
            if s.count == 3 {
                let (t, c) = (s[1], s[2])
                reaches = (0..<s[0]).contains { b in values[(b * t + 1) * c ..< (b + 1) * t * c].contains { $0 != 0 } }
            } else {
                reaches = values.contains { $0 != 0 }
            }
            if reaches { return name }
        }
        return recent[recent.count - 1]
    }
}

/// Top-k by softmax probability.
enum TopPredictions {
    struct Entry { var index: Int; var label: String?; var probability: Double; var logit: Float }

    static func of(_ row: [Float], k: Int, labels: [String]?) -> [Entry] {
        let mx = row.max() ?? 0
        let e = row.map { Foundation.exp(Double($0 - mx)) }
        let z = e.reduce(0, +)
        let order = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(min(k, row.count))
        return order.map { j in
            Entry(index: j, label: labels.flatMap { j < $0.count && !$0[j].isEmpty ? $0[j] : nil },
                  probability: (e[j] / z * 1e6).rounded() / 1e6, logit: row[j])
        }
    }
}

enum Overlay {
    /// Small inputs (e.g. 28×28) enlarged by a whole factor, nearest neighbour, so the shorter
    /// side is at least `minSide`: the overlay shows the model's pixels as blocks and the map
    /// smoothly (it is upsampled to the enlarged size).
    static func enlarged(_ image: Image, minSide: Int) -> Image {
        let side = min(image.width, image.height)
        guard side > 0, side < minSide else { return image }
        let f = (minSide + side - 1) / side
        let w = image.width * f, h = image.height * f, c = image.channels
        var out = [UInt8](repeating: 0, count: w * h * c)
        image.pixels.withUnsafeBufferPointer { src in
            for y in 0..<h {
                let sy = y / f
                for x in 0..<w {
                    let s = (sy * image.width + x / f) * c, d = (y * w + x) * c
                    for k in 0..<c { out[d + k] = src[s + k] }
                }
            }
        }
        return (try? Image(width: w, height: h, channels: c, pixels: out)) ?? image
    }
}

/// A one-line progress counter on stderr, only when stderr is a terminal and not --quiet.
final class Progress {
    let total: Int
    let enabled: Bool
    var done = 0

    init(total: Int, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    func step(_ what: String) {
        done += 1
        guard enabled else { return }
        let width = 24, filled = total > 0 ? width * done / total : width
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write(Data("\r\u{1B}[K[\(bar)] \(done)/\(total) \(what)".utf8))
    }

    func clear() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
