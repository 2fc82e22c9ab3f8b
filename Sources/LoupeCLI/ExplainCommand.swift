import ArgumentParser
import Foundation
import Loupe

/// `loupe explain [MODEL] INPUT... --method gradcam[,...]`.
struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain a classifier's decision on images or .npy tensors (Grad-CAM and friends).",
        discussion: """
        Examples:
          loupe explain                        (demo model, its example images)
          loupe explain model.onnx photo.jpg   (Grad-CAM of the top class)
          loupe explain model.onnx imgs/ --method gradcam,scorecam --target 3
          loupe explain model.onnx x.npy --target "tabby cat" --layer NAME

        MODEL is the first argument when it ends in .onnx; otherwise the demo model is used (looked up in \(DemoFiles.lookupSummary)).

        Inputs: PNG/JPEG images (prepared with MODEL.preprocess.json next to the model; without one, from the model's input shape), .npy tensors (fed as they are), directories (their .png/.jpg/.jpeg/.npy files) and glob patterns.

        Methods: \(ExplainMethods.all.map(\.name).joined(separator: ", ")) (--list-methods).

        Default layer: the last feature map with more than one spatial position that the target's gradient reaches, in execution order: the last convolutional feature map before global pooling, a vision transformer's last block input (N, k+h·w, C) (k = 1, 2 or 5 leading class, distillation or register tokens), or a Swin Transformer's final norm (channels-last (N, h, w, C) maps are traced through the graph's Transposes and permuted). `loupe inspect MODEL` lists the value names.

        Output, per input (stem = file name without extension):
          DIR/<stem>.<method>.npy  float32 (1, h, w) map at the layer, after ReLU
          DIR/<stem>.<method>.png  the map upsampled and coloured over the input
          DIR/<stem>.json          top-k, target, layer, parameters, wall time
          DIR/report.html          every input and map on one self-contained page

        A method that cannot run on the model is reported (one line each) and skipped; the \
        others are still written, and the exit status is non-zero.
        """
    )

    @Argument(help: "[MODEL.onnx] INPUT... (images, .npy, directories, globs). No arguments: the demo.")
    var paths: [String] = []

    @OptionGroup var options: ExplainOptions

    func run() throws {
        try CLIFailure.run {
            if options.listMethods {
                for m in ExplainMethods.all {
                    print("\(m.name.padding(toLength: 12, withPad: " ", startingAt: 0)) \(m.summary)  [\(m.reference)]")
                }
                return
            }
            var modelPath: String
            var inputs = paths
            var isDemo = false
            if let first = paths.first, first.lowercased().hasSuffix(".onnx") {
                modelPath = first
                inputs.removeFirst()
                guard !inputs.isEmpty else { throw CLIError("no input given: loupe explain \(first) IMAGE... (images, .npy files or directories)") }
            } else {
                let demo = try DemoFiles.locate()
                modelPath = demo.model
                isDemo = true
                if inputs.isEmpty { inputs = [demo.images] }
            }
            try ExplainRunner(options: options, modelPath: modelPath, inputs: inputs, isDemo: isDemo).run()
        }
    }
}

/// Options shared by `loupe explain` and `loupe demo`.
struct ExplainOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Method(s), comma-separated or repeated: \(ExplainMethods.names.joined(separator: ", ")).")
    var method: [String] = ["gradcam,ig,saliency"]

    @Option(help: "Class to explain: 'top' (the predicted class), a class index, or a label from the labels file.")
    var target: String = "top"

    @Option(help: "Layer (value name) for CAM methods; default: the last spatial feature map (see --help).")
    var layer: String?

    @Option(name: .shortAndLong, help: "Output directory (created if missing).")
    var out: String = "loupe-out"

    @Option(help: "Files to write, comma-separated: png, npy, json, html (DIR/report.html, one self-contained page), svg (DIR/<input>.montage.svg, a labelled montage of every method).")
    var format: String = "png,npy,json,html,svg"

    @Option(help: "How many predictions to record and print.")
    var top: Int = 5

    @Option(help: "A labels file (one class per line); default: the one named in the preprocess sidecar.")
    var labels: String?

    @Option(help: "Forward passes per batch for scorecam/ablationcam (defaults 16 and 32, as pytorch-grad-cam).")
    var batchSize: Int?

    @Option(help: "Integration steps for ig.")
    var steps: Int = 50

    @Option(help: "Noisy copies per input for smoothgrad, smoothgrad-sq and vargrad.")
    var samples: Int = 25

    @Option(help: "Noise standard deviation for the noise methods, as a fraction of the input's value range.")
    var noiseLevel: Float = 0.15

    @Option(help: "Random seed for noise and random baselines.")
    var seed: UInt64 = 0

    @Option(help: "Baseline for ig and deeplift: zeros, blur or uniform.")
    var baseline: String = "zeros"

    @Option(help: "Colormap for overlays: \(Colormap.allCases.map(\.rawValue).joined(separator: ", ")) (default: jet for unsigned maps, bwr for signed ones).")
    var colormap: String?

    @Option(help: "Overlay opacity of the heatmap, 0...1.")
    var alpha: Float = 0.5

    @Flag(help: "No progress on stderr.")
    var quiet = false

    @Flag(help: "List the methods and exit.")
    var listMethods = false
}
