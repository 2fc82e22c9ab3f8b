import Foundation
import Loupe

/// `--method cam`: the original CAM (Zhou et al. 2016) for networks whose head is global
/// average pooling followed by one linear layer. The classifier weight matrix is found in the
/// graph: the first Gemm (or MatMul) with a constant weight whose input side has the layer's
/// channel count and whose output side has the model output's class count.
struct ClassifierCAMMethod: ExplainMethod {
    let name = "cam"
    let summary = "CAM: layer channels weighted by the classifier weights of a GAP + linear head"
    let reference = "pytorch-grad-cam / Zhou et al. 2016 (CAM)"
    var needsLayer: Bool { true }

    func explain(_ r: ExplainRequest) throws -> ExplainOutcome {
        let shapes = try r.model.inferShapes(inputShapes: [r.model.inputs[0].name: r.input.shape])
        guard let layerShape = shapes[r.layer], layerShape.count == 4 else {
            throw CLIError("cam: layer '\(r.layer)' is not a (1, C, h, w) feature map")
        }
        let channels = layerShape[1]
        guard let out = r.model.outputs.first, let classes = shapes[out.name]?.last else {
            throw CLIError("cam: the model declares no output")
        }
        let weight = try Self.classifierWeight(r.model.graph, channels: channels, classes: classes)
        let result = try CAM.explain(model: r.model, input: r.input, layer: r.layer, classes: [r.target],
                                     method: .cam(classifierWeight: weight))
        return ExplainOutcome(map: result.cam, scaling: .unsigned,
                              parameters: ["layer": .string(r.layer), "relu": .bool(true), "classifierWeight": .ints(weight.shape)])
    }

    /// The (classes, C) weight of the head, transposed if the file stores it (C, classes).
    static func classifierWeight(_ g: Graph, channels: Int, classes: Int) throws -> Tensor {
        for node in g.nodes where node.opType == "Gemm" || node.opType == "MatMul" {
            guard node.inputs.count >= 2, let w = g.initializers[node.inputs[1]], w.rank == 2 else { continue }
            var transB = false
            if node.opType == "Gemm", case let .int(t)? = node.attributes["transB"] { transB = t != 0 }
            if transB && w.shape == [classes, channels] { return w }
            if !transB && w.shape == [channels, classes] {
                let v = try w.floats()
                var t = [Float](repeating: 0, count: v.count)
                for i in 0..<channels { for j in 0..<classes { t[j * channels + i] = v[i * classes + j] } }
                return try Tensor(shape: [classes, channels], floats: t)
            }
        }
        throw CLIError("cam: no linear layer maps the layer's \(channels) channels to \(classes) classes; CAM needs a global-average-pooled head (use gradcam, which equals CAM up to 1/(h·w) on such heads)")
    }
}

/// `--method fullgrad`: FullGrad (Srinivas & Fleuret 2019) — input gradient × input plus every
/// bias gradient × bias, each made positive, resized to the input and summed; returned at input
/// resolution (1, H, W) and min–max scaled per sample, as pytorch-grad-cam returns it.
struct FullGradMethod: ExplainMethod {
    let name = "fullgrad"
    let summary = "FullGrad: input-gradient and bias-gradient maps of every layer, summed"
    let reference = "pytorch-grad-cam FullGrad"
    var needsLayer: Bool { false }

    func explain(_ r: ExplainRequest) throws -> ExplainOutcome {
        let map = try CAM.FullGrad.explain(model: r.model, input: r.input, classes: [r.target])
        return ExplainOutcome(map: map, scaling: .unsigned, parameters: ["scaled": .bool(true)])
    }
}
