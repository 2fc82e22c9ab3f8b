import LoupeTensor

/// An 8-bit raster image: `height` rows of `width` pixels with `channels` interleaved samples
/// each (HWC, row-major), the layout PIL and `torchvision.io.decode_image` (after permuting)
/// use.
///
/// Channels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA. Samples are `UInt8` because every
/// torchvision preprocessing pipeline Loupe mirrors starts from 8-bit pixels (PIL images or
/// uint8 tensors); 16-bit PNGs are decoded at full precision and then rounded to 8 bits (see
/// ``Image/init(pngData:name:)``).
public struct Image: Sendable, Equatable {
    /// Pixels per row.
    public let width: Int
    /// Rows.
    public let height: Int
    /// Samples per pixel: 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA).
    public let channels: Int
    /// `height * width * channels` samples, row-major, channels interleaved.
    public var pixels: [UInt8]

    /// Creates an image, checking that `pixels` holds `height * width * channels` samples.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
        guard width >= 0, height >= 0 else {
            throw ImageError.invalidArgument(op: "Image", message: "negative size \(width) x \(height)")
        }
        guard (1...4).contains(channels) else {
            throw ImageError.invalidArgument(op: "Image", message: "channels must be 1-4, got \(channels)")
        }
        guard pixels.count == width * height * channels else {
            throw ImageError.invalidArgument(
                op: "Image",
                message: "\(width) x \(height) x \(channels) needs \(width * height * channels) samples, got \(pixels.count)")
        }
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// An image with every sample set to `value`.
    public init(width: Int, height: Int, channels: Int, value: UInt8 = 0) throws {
        guard width >= 0, height >= 0 else {
            throw ImageError.invalidArgument(op: "Image", message: "negative size \(width) x \(height)")
        }
        try self.init(width: width, height: height, channels: channels,
                      pixels: [UInt8](repeating: value, count: width * height * channels))
    }

    /// For code that has already checked the sizes.
    init(unchecked width: Int, _ height: Int, _ channels: Int, _ pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// Whether the last channel is alpha.
    public var hasAlpha: Bool { channels == 2 || channels == 4 }

    /// The samples of pixel (`x`, `y`).
    public subscript(x: Int, y: Int) -> ArraySlice<UInt8> {
        let start = (y * width + x) * channels
        return pixels[start..<start + channels]
    }

    /// The image with `channels` samples per pixel, converted as PIL's `Image.convert` does
    /// between modes "L", "LA", "RGB" and "RGBA":
    /// - to gray: ITU-R 601-2 luma `L = (19595 R + 38470 G + 7471 B + 32768) >> 16`
    ///   (PIL's fixed-point form of `0.299 R + 0.587 G + 0.114 B`);
    /// - gray to RGB: the gray value copied to R, G and B;
    /// - alpha is dropped (not composited) when the target has none, and set to 255 when
    ///   the source has none.
    public func converted(toChannels target: Int) throws -> Image {
        guard (1...4).contains(target) else {
            throw ImageError.invalidArgument(op: "Image.converted", message: "channels must be 1-4, got \(target)")
        }
        if target == channels { return self }
        let n = width * height
        var out = [UInt8](repeating: 0, count: n * target)
        let sourceColor = channels >= 3
        let sourceAlpha = hasAlpha
        let targetColor = target >= 3
        let targetAlpha = target == 2 || target == 4
        let c = channels
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<n {
                    let s = i * c
                    let d = i * target
                    if targetColor {
                        if sourceColor {
                            dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2]
                        } else {
                            dst[d] = src[s]; dst[d + 1] = src[s]; dst[d + 2] = src[s]
                        }
                    } else {
                        dst[d] = sourceColor ? Image.luma(src[s], src[s + 1], src[s + 2]) : src[s]
                    }
                    if targetAlpha {
                        dst[d + target - 1] = sourceAlpha ? src[s + c - 1] : 255
                    }
                }
            }
        }
        return Image(unchecked: width, height, target, out)
    }

    /// PIL's `L24` luma in 16.16 fixed point (Convert.c): exact integer arithmetic, so gray
    /// conversions equal PIL's bit for bit.
    @inline(__always)
    static func luma(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
        UInt8(truncatingIfNeeded: (UInt32(r) * 19595 + UInt32(g) * 38470 + UInt32(b) * 7471 + 0x8000) >> 16)
    }

    /// The samples as a float32 tensor of shape (1, C, H, W), each divided by 255
    /// (torchvision's `ToTensor`/`ToDtype(float32, scale=True)`).
    public func tensor() -> Tensor {
        let c = channels, hw = width * height
        return Tensor.makeFloats(shape: [1, c, height, width]) { out in
            pixels.withUnsafeBufferPointer { src in
                for i in 0..<hw {
                    for k in 0..<c {
                        out[k * hw + i] = Float(src[i * c + k]) / 255
                    }
                }
            }
        }
    }
}

extension Image {
    /// The image held by a float tensor of shape (1, C, H, W) or (C, H, W), C = 1 or 3 — e.g.
    /// a model input loaded from `.npy` — for drawing heatmaps over it. With `normalization`,
    /// `x * std + mean` is undone first. Values are then scaled by 255, rounded and clamped.
    public init(tensor: Tensor, normalization: Normalize? = nil) throws {
        let s = tensor.shape
        guard (s.count == 4 && s[0] == 1) || s.count == 3, let c = s.dropLast(2).last, c == 1 || c == 3 else {
            throw ImageError.invalidArgument(op: "Image(tensor:)", message: "expected a (1, C, H, W) or (C, H, W) tensor with C = 1 or 3, got \(s)")
        }
        if let normalization, normalization.mean.count != c || normalization.std.count != c {
            throw ImageError.invalidArgument(op: "Image(tensor:)", message: "normalization has \(normalization.mean.count) means for \(c) channels")
        }
        let h = s[s.count - 2], w = s[s.count - 1], hw = h * w
        let values = try tensor.floats("Image(tensor:)")
        var out = [UInt8](repeating: 0, count: hw * c)
        for k in 0..<c {
            let m = normalization?.mean[k] ?? 0, sd = normalization?.std[k] ?? 1
            for i in 0..<hw {
                let v = (values[k * hw + i] * sd + m) * 255
                out[i * c + k] = v.isNaN ? 0 : UInt8(min(max(v.rounded(), 0), 255))
            }
        }
        self.init(unchecked: w, h, c, out)
    }
}
