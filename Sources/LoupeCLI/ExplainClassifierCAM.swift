import Foundation
import Loupe

/// `--method cam`: the original CAM (Zhou et al. 2016) for networks whose head is global
/// average pooling followed by one linear layer. The classifier weight matrix is read from the
/// graph by following the layer's value to the class scores
/// (``CAM/globalAveragePooledHeadWeight(model:layer:)``), which refuses any other head by name.
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
        // The head's weight, after checking that the layer reaches the scores through GAP and
        // one linear layer (otherwise these weights would not decompose the class score).
        let weight = try CAM.globalAveragePooledHeadWeight(model: r.model, layer: r.layer)
        guard weight.shape[1] == layerShape[1] else {
            throw CLIError("cam: the classifier weight \(weight.shape) does not take the layer's \(layerShape[1]) channels")
        }
        let result = try CAM.explain(model: r.model, input: r.input, layer: r.layer, classes: [r.target],
                                     method: .cam(classifierWeight: weight))
        return ExplainOutcome(map: result.cam, scaling: .unsigned,
                              parameters: ["layer": .string(r.layer), "relu": .bool(true), "classifierWeight": .ints(weight.shape)])
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
