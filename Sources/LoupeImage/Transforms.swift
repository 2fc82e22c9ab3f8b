import LoupeTensor

/// Crops the centre `[height, width]` (or `[size]`, square) of an image, as torchvision's
/// `CenterCrop`: the offsets are `round((H - h) / 2)` and `round((W - w) / 2)` with Python's
/// round-half-to-even, and an image smaller than the crop is first zero-padded by
/// `(d / 2, (d + 1) / 2)` on each axis.
public struct CenterCrop: Codable, Sendable, Equatable {
    /// `[size]` or `[height, width]`.
    public var size: [Int]

    public init(_ size: Int) { self.size = [size] }
    public init(height: Int, width: Int) { self.size = [height, width] }

    public func callAsFunction(_ image: Image) throws -> Image {
        guard size.count == 1 || size.count == 2, size.allSatisfy({ $0 > 0 }) else {
            throw ImageError.invalidArgument(op: "CenterCrop", message: "size must be [size] or [height, width] of positive values, got \(size)")
        }
        let cropHeight = size[0], cropWidth = size.count == 2 ? size[1] : size[0]
        var image = image
        if cropWidth > image.width || cropHeight > image.height {
            let dw = max(cropWidth - image.width, 0), dh = max(cropHeight - image.height, 0)
            image = image.padded(left: dw / 2, top: dh / 2, right: (dw + 1) / 2, bottom: (dh + 1) / 2)
        }
        let top = Int((Double(image.height - cropHeight) / 2).rounded(.toNearestOrEven))
        let left = Int((Double(image.width - cropWidth) / 2).rounded(.toNearestOrEven))
        return image.cropped(x: left, y: top, width: cropWidth, height: cropHeight)
    }
}

extension Image {
    /// The `width` × `height` region at (`x`, `y`); the caller guarantees it lies inside.
    func cropped(x: Int, y: Int, width w: Int, height h: Int) -> Image {
        if x == 0 && y == 0 && w == width && h == height { return self }
        let c = channels
        var out = [UInt8](repeating: 0, count: w * h * c)
        for row in 0..<h {
            let s = ((y + row) * width + x) * c
            out.replaceSubrange(row * w * c..<(row + 1) * w * c, with: pixels[s..<s + w * c])
        }
        return Image(unchecked: w, h, c, out)
    }

    /// The image inside a border of zeros.
    func padded(left: Int, top: Int, right: Int, bottom: Int) -> Image {
        let w = width + left + right, h = height + top + bottom, c = channels
        var out = [UInt8](repeating: 0, count: w * h * c)
        for row in 0..<height {
            let s = row * width * c, d = ((row + top) * w + left) * c
            out.replaceSubrange(d..<d + width * c, with: pixels[s..<s + width * c])
        }
        return Image(unchecked: w, h, c, out)
    }
}

/// Converts to gray with PIL's `convert("L")` luma (see ``Image/converted(toChannels:)``),
/// then replicates it to `outputChannels` (1 or 3), as torchvision's `Grayscale` on PIL images.
/// Alpha is dropped.
public struct Grayscale: Codable, Sendable, Equatable {
    public var outputChannels: Int

    public init(outputChannels: Int = 1) { self.outputChannels = outputChannels }

    public func callAsFunction(_ image: Image) throws -> Image {
        guard outputChannels == 1 || outputChannels == 3 else {
            throw ImageError.invalidArgument(op: "Grayscale", message: "outputChannels must be 1 or 3, got \(outputChannels)")
        }
        return try image.converted(toChannels: 1).converted(toChannels: outputChannels)
    }
}

/// HWC 8-bit image → (1, C, H, W) float32 in [0, 1], each sample divided by 255
/// (torchvision's `ToTensor`).
public struct ToTensor: Codable, Sendable, Equatable {
    public init() {}
    public func callAsFunction(_ image: Image) -> Tensor { image.tensor() }
}

/// `(x - mean[c]) / std[c]` per channel of a (1, C, H, W) or (C, H, W) float32 tensor, in
/// float32 like torchvision's `Normalize`.
public struct Normalize: Codable, Sendable, Equatable {
    public var mean: [Float]
    public var std: [Float]

    public init(mean: [Float], std: [Float]) {
        self.mean = mean
        self.std = std
    }

    /// The ImageNet statistics every torchvision classification model was trained with.
    public static let imagenet = Normalize(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

    public func callAsFunction(_ tensor: Tensor) throws -> Tensor {
        guard tensor.rank == 3 || tensor.rank == 4 else {
            throw ImageError.invalidArgument(op: "Normalize", message: "expected a (1, C, H, W) or (C, H, W) tensor, got shape \(tensor.shape)")
        }
        let c = tensor.shape[tensor.rank - 3]
        let hw = tensor.shape[tensor.rank - 2] * tensor.shape[tensor.rank - 1]
        guard mean.count == c, std.count == c else {
            throw ImageError.invalidArgument(op: "Normalize", message: "\(mean.count) means and \(std.count) stds for \(c) channels")
        }
        guard std.allSatisfy({ $0 != 0 && $0.isFinite }) else {
            throw ImageError.invalidArgument(op: "Normalize", message: "std must be finite and non-zero, got \(std)")
        }
        let batches = tensor.count / max(c * hw, 1)
        let mean = self.mean, std = self.std
        return try tensor.withFloats("Normalize") { src in
            Tensor.makeFloats(shape: tensor.shape) { dst in
                for b in 0..<batches {
                    for k in 0..<c {
                        let base = (b * c + k) * hw
                        let m = mean[k], s = std[k]
                        for i in base..<base + hw { dst[i] = (src[i] - m) / s }
                    }
                }
            }
        }
    }
}
