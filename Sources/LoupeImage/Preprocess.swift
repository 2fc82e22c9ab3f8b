import Foundation
import LoupeTensor

/// An image → model-input pipeline, the equivalent of
/// `transforms.Compose([Resize(resize), CenterCrop(crop), ToTensor(), Normalize(mean, std)])`
/// (with `Grayscale(channels)` first when `grayscale`), applied to a PIL image opened with
/// `.convert("RGB")` (or `"L"`).
///
/// It is `Codable` so it can live next to a model as a small JSON sidecar
/// (`model.preprocess.json`, see ``sidecarPath(forModel:)``):
///
/// ```json
/// {"resize": 256, "crop": [224], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
///  "inputSize": [3, 224, 224], "labels": "imagenet_classes.txt"}
/// ```
///
/// Every key is optional: a missing `resize`/`crop`/`mean`/`std` skips that step, `channels`
/// defaults to 3, `grayscale` to false and `resizeMatching` to `"pil"` (`"tensor"` reproduces
/// torchvision's uint8-tensor resize instead). The output is always (1, C, H, W) float32.
public struct Preprocess: Codable, Sendable, Equatable {
    /// Color channels of the model input: 3 (RGB) or 1 (gray).
    public var channels: Int
    /// Convert to gray first (replicated to 3 channels when `channels` is 3), like
    /// `transforms.Grayscale(num_output_channels=channels)`.
    public var grayscale: Bool
    /// Shorter side after resizing (``Resize``), or nil for no resize.
    public var resize: Int?
    /// Longer-side cap for the resize (torchvision `max_size`).
    public var maxSize: Int?
    /// Whose resize arithmetic to reproduce: PIL's (transforms on PIL images, the default) or
    /// torchvision's uint8-tensor path (see ``Resize``).
    public var resizeMatching: Resize.Reference
    /// ``CenterCrop`` size, `[size]` or `[height, width]`, or nil for no crop.
    public var crop: [Int]?
    /// ``Normalize`` statistics, one per channel; nil for none (output in [0, 1]).
    public var mean: [Float]?
    public var std: [Float]?
    /// The model's expected input (C, H, W); the output is checked against it.
    public var inputSize: [Int]?
    /// A labels file (one class name per line), relative to the sidecar's folder.
    public var labels: String?

    public init(channels: Int = 3, grayscale: Bool = false, resize: Int? = nil, maxSize: Int? = nil,
                resizeMatching: Resize.Reference = .pil, crop: [Int]? = nil, mean: [Float]? = nil, std: [Float]? = nil,
                inputSize: [Int]? = nil, labels: String? = nil) {
        self.channels = channels
        self.grayscale = grayscale
        self.resize = resize
        self.maxSize = maxSize
        self.resizeMatching = resizeMatching
        self.crop = crop
        self.mean = mean
        self.std = std
        self.inputSize = inputSize
        self.labels = labels
    }

    /// torchvision's ImageNet evaluation transform: Resize(256), CenterCrop(224), ToTensor,
    /// Normalize(ImageNet mean/std).
    public static let imagenet = Preprocess(resize: 256, crop: [224], mean: Normalize.imagenet.mean,
                                            std: Normalize.imagenet.std, inputSize: [3, 224, 224])

    private enum CodingKeys: String, CodingKey {
        case channels, grayscale, resize, maxSize, resizeMatching, crop, mean, std, inputSize, labels
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(channels: try c.decodeIfPresent(Int.self, forKey: .channels) ?? 3,
                  grayscale: try c.decodeIfPresent(Bool.self, forKey: .grayscale) ?? false,
                  resize: try c.decodeIfPresent(Int.self, forKey: .resize),
                  maxSize: try c.decodeIfPresent(Int.self, forKey: .maxSize),
                  resizeMatching: try c.decodeIfPresent(Resize.Reference.self, forKey: .resizeMatching) ?? .pil,
                  crop: try c.decodeIfPresent([Int].self, forKey: .crop),
                  mean: try c.decodeIfPresent([Float].self, forKey: .mean),
                  std: try c.decodeIfPresent([Float].self, forKey: .std),
                  inputSize: try c.decodeIfPresent([Int].self, forKey: .inputSize),
                  labels: try c.decodeIfPresent(String.self, forKey: .labels))
    }

    /// Checks the fields against each other; errors name the field.
    public func validate() throws {
        func fail(_ message: String) -> ImageError { .invalidArgument(op: "Preprocess", message: message) }
        guard channels == 1 || channels == 3 else { throw fail("channels must be 1 or 3, got \(channels)") }
        if let resize, resize <= 0 { throw fail("resize must be positive, got \(resize)") }
        if let crop, !(crop.count == 1 || crop.count == 2) || !crop.allSatisfy({ $0 > 0 }) {
            throw fail("crop must be [size] or [height, width] of positive values, got \(crop)")
        }
        if (mean == nil) != (std == nil) { throw fail("mean and std must be given together") }
        if let mean, let std, mean.count != channels || std.count != channels {
            throw fail("mean and std need \(channels) values each, got \(mean.count) and \(std.count)")
        }
        if let inputSize, inputSize.count != 3 || inputSize[0] != channels {
            throw fail("inputSize must be [C, H, W] with C = channels (\(channels)), got \(inputSize)")
        }
    }

    /// The image as a (1, C, H, W) float32 model input.
    public func callAsFunction(_ image: Image) throws -> Tensor {
        try validate()
        var image = image
        if grayscale || channels == 1 {
            image = try Grayscale(outputChannels: channels)(image)
        } else {
            image = try image.converted(toChannels: 3)
        }
        if let resize { image = try Resize(resize, maxSize: maxSize, matching: resizeMatching)(image) }
        if let crop { image = try CenterCrop(size: crop)(image) }
        var tensor = image.tensor()
        if let mean, let std { tensor = try Normalize(mean: mean, std: std)(tensor) }
        if let inputSize, Array(tensor.shape.dropFirst()) != inputSize {
            throw ImageError.invalidArgument(
                op: "Preprocess",
                message: "the pipeline produces \(Array(tensor.shape.dropFirst())) but the model expects inputSize \(inputSize); set resize/crop to match")
        }
        return tensor
    }

    /// `model.onnx` → `model.preprocess.json` (same folder).
    public static func sidecarPath(forModel modelPath: String) -> String {
        URL(fileURLWithPath: modelPath).deletingPathExtension().appendingPathExtension("preprocess.json").path
    }

    /// Reads a JSON sidecar.
    public init(contentsOfFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImageError.io(path: path, message: FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")
        }
        do {
            self = try JSONDecoder().decode(Preprocess.self, from: data)
        } catch let error as DecodingError {
            throw ImageError.io(path: path, message: "not a valid preprocess sidecar: \(Preprocess.describe(error))")
        }
        do { try validate() } catch let ImageError.invalidArgument(_, message) {
            throw ImageError.io(path: path, message: message)
        }
    }

    /// Writes the sidecar as pretty-printed JSON with sorted keys.
    public func write(toFile path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try encoder.encode(self).write(to: URL(fileURLWithPath: path))
        } catch {
            throw ImageError.io(path: path, message: "cannot write: \(error.localizedDescription)")
        }
    }

    /// The labels file resolved against the sidecar's folder, or nil.
    public func labelsPath(relativeToSidecar sidecarPath: String) -> String? {
        guard let labels else { return nil }
        if labels.hasPrefix("/") { return labels }
        return URL(fileURLWithPath: sidecarPath).deletingLastPathComponent().appendingPathComponent(labels).path
    }

    /// Class names from a labels file: one per line, surrounding whitespace trimmed, trailing
    /// empty lines dropped (the format of torchvision's `imagenet_classes.txt`).
    public static func readLabels(path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImageError.io(path: path, message: FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ImageError.io(path: path, message: "labels file is not UTF-8 text")
        }
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        while lines.last?.isEmpty == true { lines.removeLast() }
        return lines
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case let .typeMismatch(_, c), let .valueNotFound(_, c), let .keyNotFound(_, c), let .dataCorrupted(c):
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? c.debugDescription : "\(path): \(c.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

extension CenterCrop {
    init(size: [Int]) { self.size = size }
}
