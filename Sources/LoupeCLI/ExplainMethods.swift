import Foundation
import Loupe

/// What one explanation method needs to run on one input.
struct ExplainRequest {
    var model: Model
    /// The model input, (1, ...).
    var input: Tensor
    /// Target class (a logit index of the model's first output).
    var target: Int
    /// The CAM layer (value name); used by methods with `needsLayer`.
    var layer: String
    /// Batch size for the perturbation methods (nil: the method's own default).
    var batchSize: Int?
    /// Path methods (ig): integration steps.
    var steps: Int = 50
    /// Noise methods (smoothgrad, smoothgrad-sq, vargrad): samples per input and the noise
    /// standard deviation as a fraction of the input's value range (SmoothGrad, Smilkov et al.
    /// 2017, recommend 10–20 %).
    var samples: Int = 25
    var noiseLevel: Float = 0.15
    var seed: UInt64 = 0
    /// Reference input for ig/deeplift: zeros, blur, or uniform noise.
    var baseline: String = "zeros"
}

/// One method's result: the raw map as written to `.npy`, how to colour it, and the
/// parameters that went into it (recorded in the JSON).
struct ExplainOutcome {
    var map: Tensor
    var scaling: HeatmapScaling
    var parameters: [String: JSONValue]
    /// What the overlay shows when `map` is not a single plane: input-space attributions
    /// (1, C, H, W) are summed over channels (as Captum's visualisation does).
    var display: Tensor? = nil
}

/// An explanation method the CLI can run, found by name in ``ExplainMethods``. CAM-family
/// methods work at a layer; input-space methods (saliency, integrated gradients, ...) plug in
/// here later with `needsLayer == false` and a map shaped like the model input.
protocol ExplainMethod: Sendable {
    /// The name used on the command line and in output file names.
    var name: String { get }
    /// One line for `--help` and `loupe explain --list-methods`.
    var summary: String { get }
    /// The reference implementation the numbers follow.
    var reference: String { get }
    var needsLayer: Bool { get }
    func explain(_ request: ExplainRequest) throws -> ExplainOutcome
}

/// A CAM-family method: runs ``CAM/explain(model:input:layer:classes:method:inputName:outputName:)``
/// and returns `ReLU(raw)` at the layer's resolution, shape (1, h, w) — the
/// `relu_attributions=True` map of Captum's LayerGradCam.
struct CAMExplainMethod: ExplainMethod {
    let name: String
    let summary: String
    let reference: String
    /// Builds the CAM method for a batch size (ignored by the gradient weightings).
    let make: @Sendable (_ batchSize: Int?) -> (CAM.Method, [String: JSONValue])
    var needsLayer: Bool { true }

    func explain(_ r: ExplainRequest) throws -> ExplainOutcome {
        let (method, extra) = make(r.batchSize)
        let result = try CAM.explain(model: r.model, input: r.input, layer: r.layer, classes: [r.target], method: method)
        var params: [String: JSONValue] = ["layer": .string(r.layer), "relu": .bool(true),
                                           "layerShape": .ints(result.activations.shape)]
        params.merge(extra) { a, _ in a }
        return ExplainOutcome(map: result.cam, scaling: .unsigned, parameters: params)
    }
}

/// An input-space method of the gradient family (``LoupeExplain``): the attribution has the
/// model input's shape (1, C, H, W) and is written raw; the overlay shows its channel sum.
struct GradientExplainMethod: ExplainMethod {
    let name: String
    let summary: String
    let reference: String
    let scaling: HeatmapScaling
    /// Guided Grad-CAM also reads a layer; the others work on the input alone.
    var needsLayer: Bool = false
    let make: @Sendable (ExplainRequest) throws -> (any Explainer, [String: JSONValue])

    func explain(_ r: ExplainRequest) throws -> ExplainOutcome {
        let (method, params) = try make(r)
        let e = try method.explain(r.model, input: r.input, target: .index(r.target),
                                   options: LoupeExplain.ExplainOptions(batchSize: r.batchSize))
        var parameters = params
        if let delta = e.convergenceDelta { parameters["convergenceDelta"] = .array(delta.map { .double(Double($0)) }) }
        let a = e.attribution
        let display = a.rank == 4 ? try a.reduce(.sum, axes: [1], keepDims: false) : a
        return ExplainOutcome(map: a, scaling: scaling, parameters: parameters, display: display)
    }

    /// The baseline named on the command line.
    static func baseline(_ r: ExplainRequest) throws -> Baseline {
        switch r.baseline {
        case "zeros", "black": return .zeros
        case "blur": return .blurred(sigma: 10)
        case "uniform": return .uniform(low: -1, high: 1, seed: r.seed)
        default: throw CLIError("unknown --baseline '\(r.baseline)'; use zeros, blur or uniform")
        }
    }

    /// Noise standard deviation: `noiseLevel` × the input's value range.
    static func stdev(_ r: ExplainRequest) throws -> Float {
        let v = try r.input.floats()
        return r.noiseLevel * ((v.max() ?? 0) - (v.min() ?? 0))
    }

    static func noise(_ name: String, _ kind: NoiseTunnel<Saliency>.Kind, summary: String) -> GradientExplainMethod {
        GradientExplainMethod(name: name, summary: summary, reference: "Captum NoiseTunnel(Saliency, \(kind.rawValue))",
                              scaling: .unsigned) { r in
            let sd = try stdev(r)
            return (NoiseTunnel(Saliency(), kind: kind, samples: r.samples, stdev: sd, seed: r.seed),
                    ["samples": .int(r.samples), "stdev": .double(Double(sd)), "seed": .int(Int(r.seed))])
        }
    }
}

/// The methods `loupe explain --method` knows, by name.
enum ExplainMethods {
    static let all: [any ExplainMethod] = cams + gradients

    static let gradients: [any ExplainMethod] = [
        GradientExplainMethod(name: "saliency", summary: "|∂ target / ∂ input| (Simonyan et al. 2014)",
                              reference: "Captum Saliency (abs=True)", scaling: .unsigned) { _ in (Saliency(), ["abs": .bool(true)]) },
        GradientExplainMethod(name: "inputxgradient", summary: "input × gradient",
                              reference: "Captum InputXGradient", scaling: .signed) { _ in (InputXGradient(), [:]) },
        GradientExplainMethod(name: "ig", summary: "Integrated Gradients (Sundararajan et al. 2017), Gauss-Legendre path",
                              reference: "Captum IntegratedGradients", scaling: .signed) { r in
            (IntegratedGradients(baseline: try GradientExplainMethod.baseline(r), steps: r.steps),
             ["steps": .int(r.steps), "baseline": .string(r.baseline), "rule": .string("gausslegendre")])
        },
        GradientExplainMethod.noise("smoothgrad", .smoothGrad, summary: "SmoothGrad: saliency averaged over noisy copies"),
        GradientExplainMethod.noise("smoothgrad-sq", .smoothGradSquared, summary: "SmoothGrad²: mean of squared noisy saliency"),
        GradientExplainMethod.noise("vargrad", .varGrad, summary: "VarGrad: variance of noisy saliency"),
        GradientExplainMethod(name: "guidedbackprop", summary: "Guided backpropagation (Springenberg et al. 2015)",
                              reference: "Captum GuidedBackprop", scaling: .signed) { _ in (GuidedBackprop(), [:]) },
        GradientExplainMethod(name: "deconvolution", summary: "DeconvNet (Zeiler & Fergus 2014)",
                              reference: "Captum Deconvolution", scaling: .signed) { _ in (Deconvolution(), [:]) },
        GradientExplainMethod(name: "deeplift", summary: "DeepLIFT rescale rule (Shrikumar et al. 2017)",
                              reference: "Captum DeepLift", scaling: .signed) { r in
            (DeepLift(baseline: try GradientExplainMethod.baseline(r)), ["baseline": .string(r.baseline)])
        },
        GradientExplainMethod(name: "gradientshap", summary: "GradientSHAP / expected gradients against the baseline (Lundberg & Lee 2017)",
                              reference: "Captum GradientShap", scaling: .signed) { r in
            let b = try Baseline.tensor(for: GradientExplainMethod.baseline(r), like: r.input)
            return (GradientShap(baselines: b, samples: r.samples, seed: r.seed),
                    ["baseline": .string(r.baseline), "samples": .int(r.samples), "seed": .int(Int(r.seed))])
        },
        GradientExplainMethod(name: "guidedgradcam", summary: "Guided Grad-CAM: guided backprop × upsampled Grad-CAM (Selvaraju et al. 2017)",
                              reference: "Captum GuidedGradCam", scaling: .signed, needsLayer: true) { r in
            (GuidedGradCAM(layer: r.layer), ["layer": .string(r.layer), "interpolation": .string("nearest")])
        },
    ]

    static let cams: [any ExplainMethod] = [
        ClassifierCAMMethod(),
        FullGradMethod(),
        CAMExplainMethod(name: "gradcam", summary: "Grad-CAM: channels weighted by their mean gradient",
                         reference: "pytorch-grad-cam GradCAM / Captum LayerGradCam") { _ in (.gradCAM, [:]) },
        CAMExplainMethod(name: "gradcam++", summary: "Grad-CAM++: second-order weighting of positive gradients",
                         reference: "pytorch-grad-cam GradCAMPlusPlus") { _ in (.gradCAMPlusPlus, [:]) },
        CAMExplainMethod(name: "xgradcam", summary: "XGrad-CAM: gradients weighted by normalized activations",
                         reference: "pytorch-grad-cam XGradCAM") { _ in (.xGradCAM, [:]) },
        CAMExplainMethod(name: "hirescam", summary: "HiResCAM: element-wise gradient × activation, summed over channels",
                         reference: "pytorch-grad-cam HiResCAM") { _ in (.hiResCAM, [:]) },
        CAMExplainMethod(name: "layercam", summary: "LayerCAM: positive gradients × activations per position",
                         reference: "pytorch-grad-cam LayerCAM") { _ in (.layerCAM, [:]) },
        CAMExplainMethod(name: "eigengradcam", summary: "EigenGrad-CAM: first principal component of activations × gradients",
                         reference: "pytorch-grad-cam EigenGradCAM") { _ in (.eigenGradCAM, [:]) },
        CAMExplainMethod(name: "eigencam", summary: "Eigen-CAM: first principal component of the activations (class-agnostic)",
                         reference: "pytorch-grad-cam EigenCAM") { _ in (.eigenCAM, [:]) },
        CAMExplainMethod(name: "scorecam", summary: "Score-CAM: channels weighted by the score of the input masked by them",
                         reference: "pytorch-grad-cam ScoreCAM") { b in
            let size = b ?? 16
            return (.scoreCAM(batchSize: size), ["batchSize": .int(size)])
        },
        CAMExplainMethod(name: "ablationcam", summary: "Ablation-CAM: channels weighted by the score drop when zeroed",
                         reference: "pytorch-grad-cam AblationCAM") { b in
            let size = b ?? 32
            return (.ablationCAM(batchSize: size), ["batchSize": .int(size)])
        },
    ]

    static var names: [String] { all.map(\.name) }

    /// The method called `name` (case-insensitive), or an error listing every valid name,
    /// closest first.
    static func named(_ name: String) throws -> any ExplainMethod {
        let key = name.lowercased().trimmingCharacters(in: .whitespaces)
        if let m = all.first(where: { $0.name == key }) { return m }
        throw CLIError("unknown method '\(name)'; valid methods: \(byCloseness(to: key).joined(separator: ", "))")
    }

    /// Every method name, closest to `s` first (edit distance, then registry order).
    static func byCloseness(to s: String) -> [String] {
        let close = Suggest.closest(to: s, in: names, limit: names.count)
        return close + names.filter { !close.contains($0) }
    }

    /// `gradcam,scorecam` → methods, in order, without duplicates.
    static func parse(_ list: [String]) throws -> [any ExplainMethod] {
        var out: [any ExplainMethod] = []
        for item in list.flatMap({ $0.split(separator: ",") }).map(String.init) where !item.isEmpty {
            let m = try named(item)
            if !out.contains(where: { $0.name == m.name }) { out.append(m) }
        }
        guard !out.isEmpty else { throw CLIError("--method is empty; valid methods: \(names.joined(separator: ", "))") }
        return out
    }
}

/// A small JSON value for method parameters and the per-input report.
enum JSONValue: Encodable, Equatable {
    case string(String), int(Int), double(Double), bool(Bool), null
    case array([JSONValue]), object([String: JSONValue])

    static func ints(_ v: [Int]) -> JSONValue { .array(v.map { .int($0) }) }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case let .string(s): try c.encode(s)
        case let .int(i): try c.encode(i)
        case let .double(d): try d.isFinite ? c.encode(d) : c.encodeNil()
        case let .bool(b): try c.encode(b)
        case .null: try c.encodeNil()
        case let .array(a): try c.encode(a)
        case let .object(o): try c.encode(o)
        }
    }
}
