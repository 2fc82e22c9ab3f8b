import Foundation
import Loupe
#if canImport(Glibc)
import Glibc
#endif

/// One input to explain: a file path and the (1, ...) model input read from it, plus the
/// picture to draw the maps over.
struct ExplainInput {
    var path: String
    /// File name without extension, made unique among the inputs of one run.
    var stem: String
    var tensor: Tensor
    /// What the model sees, as pixels (after resize/crop, before normalization), or nil when
    /// the tensor is not an image (C not 1 or 3, rank not 4).
    var picture: Image?
    /// "image" or "npy".
    var kind: String
}

enum ExplainInputs {
    static let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]
    static let inputExtensions: Set<String> = imageExtensions.union(["npy"])

    /// Expands arguments into files: directories to their image/.npy files (sorted, not
    /// recursive), arguments with `*`, `?` or `[` as globs (for shells that did not expand them).
    /// A directory with no inputs, or a glob that matches nothing, is an error.
    static func expand(_ args: [String]) throws -> [String] {
        var files: [String] = []
        let fm = FileManager.default
        for arg in args {
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: arg, isDirectory: &isDir) {
                if isDir.boolValue {
                    let entries = (try? fm.contentsOfDirectory(atPath: arg)) ?? []
                    let found = entries.filter { inputExtensions.contains(($0 as NSString).pathExtension.lowercased()) && !$0.hasPrefix(".") }
                        .sorted().map { (arg as NSString).appendingPathComponent($0) }
                    guard !found.isEmpty else {
                        throw CLIError("\(arg): no images in directory (looked for .png, .jpg, .jpeg, .npy files)")
                    }
                    files += found
                } else {
                    files.append(arg)
                }
            } else if arg.contains(where: { "*?[".contains($0) }) {
                let matches = glob(arg).filter { inputExtensions.contains(($0 as NSString).pathExtension.lowercased()) }
                guard !matches.isEmpty else { throw CLIError("\(arg): the pattern matches no .png, .jpg, .jpeg or .npy file") }
                files += matches
            } else {
                throw CLIError("\(arg): no such file or directory")
            }
        }
        return files
    }

    static func glob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        return (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }.sorted()
    }

    /// Reads every file: images through `preprocess`, `.npy` as the tensor itself (preset
    /// "none"). Errors name the file and become one-line CLI errors.
    static func load(_ files: [String], preprocess: Preprocess?) throws -> [ExplainInput] {
        var seen: [String: Int] = [:]
        return try files.map { path in
            let url = URL(fileURLWithPath: path)
            var stem = url.deletingPathExtension().lastPathComponent
            seen[stem, default: 0] += 1
            if let n = seen[stem], n > 1 { stem += "-\(n)" }
            if url.pathExtension.lowercased() == "npy" {
                let t: Tensor
                do { t = try Tensor.readNPY(path: path) } catch { throw CLIError("\(error)") }
                return ExplainInput(path: path, stem: stem, tensor: t, picture: displayImage(npy: t), kind: "npy")
            }
            guard let preprocess else {
                throw CLIError("\(path): the model has no preprocess sidecar and its input shape does not say how to prepare an image; write MODEL.preprocess.json (see docs/images.md) or pass a .npy tensor")
            }
            do {
                let image = try Image(contentsOfFile: path)
                let t = try preprocess(image)
                var picture = try Image(tensor: t, normalization: preprocess.mean.flatMap { m in preprocess.std.map { Normalize(mean: m, std: $0) } })
                picture = try picture.converted(toChannels: 3)
                return ExplainInput(path: path, stem: stem, tensor: t, picture: picture, kind: "image")
            } catch let e as ImageError {
                if case .invalidArgument = e { throw CLIError("\(path): \(e)") }
                throw CLIError("\(e)")
            }
        }
    }

    /// A .npy input drawn as a picture: each channel min–max scaled to [0, 1] over the whole
    /// tensor, since its normalization is unknown. Nil unless (1, 1|3, H, W) or (1|3, H, W).
    static func displayImage(npy t: Tensor) -> Image? {
        guard t.dtype == .float32, let v = try? t.floats() else { return nil }
        let s = t.shape
        guard (s.count == 4 && s[0] == 1 && (s[1] == 1 || s[1] == 3)) || (s.count == 3 && (s[0] == 1 || s[0] == 3)) else { return nil }
        let lo = v.min() ?? 0, hi = v.max() ?? 1
        let span = hi > lo ? hi - lo : 1
        guard let scaled = try? Tensor(shape: s, floats: v.map { ($0 - lo) / span }),
              let image = try? Image(tensor: scaled) else { return nil }
        return try? image.converted(toChannels: 3)
    }
}

/// How images become model inputs when the model has no sidecar: from its declared input
/// shape (N, C, H, W). Three channels: ImageNet statistics, shorter side resized to
/// round(H·256/224) then centre-cropped to H×W (torchvision's evaluation recipe), with H = W = 224
/// when the export left height and width symbolic (`dynamic_axes` on them); one channel:
/// grayscale, resize to H, crop H×W, no normalization (fixed H and W only).
enum DefaultPreprocess {
    static func forModel(_ model: Model) -> Preprocess? {
        guard model.inputs.count == 1, let dims = model.inputs[0].shape, dims.count == 4, let c = dims[1].value else { return nil }
        let symbolic = dims[2].value == nil && dims[3].value == nil && c == 3
        guard let h = dims[2].value ?? (symbolic ? 224 : nil), let w = dims[3].value ?? (symbolic ? 224 : nil),
              h > 0, w > 0 else { return nil }
        if c == 3 {
            let resize = Int((Double(min(h, w)) * 256 / 224).rounded())
            return Preprocess(resize: resize, crop: [h, w], mean: Normalize.imagenet.mean, std: Normalize.imagenet.std, inputSize: [3, h, w])
        }
        if c == 1 { return Preprocess(channels: 1, grayscale: true, resize: min(h, w), crop: [h, w], inputSize: [1, h, w]) }
        return nil
    }
}
