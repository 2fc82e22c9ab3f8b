/// Resizes an image with PIL's antialiased bilinear filter, the `transforms.Resize` every
/// ImageNet-style torchvision pipeline applies to PIL images.
///
/// `size` follows torchvision: one value resizes the shorter side to it and the longer side to
/// `Int(size * long / short)` (truncated, keeping the aspect ratio), optionally capped by
/// `maxSize`; two values are the exact output `[height, width]`.
///
/// The result equals `PIL.Image.resize((w, h), Image.BILINEAR)` (Pillow 13, `Resample.c`)
/// bit for bit: a separable two-pass filter (horizontal first), a triangle kernel whose support
/// widens with the downscale factor (that widening is the antialiasing), weights rounded to
/// 22-bit fixed point and each pass rounded and clamped to 8 bits.
///
/// torchvision's uint8-tensor path (`v2.functional.resize(uint8 tensor, antialias=True)`,
/// PyTorch's `_upsample_bilinear2d_aa` on uint8) computes the same weights but rounds them to
/// 16-bit integers with a precision chosen from the largest weight; it differs from PIL by at
/// most 1 in under 1% of samples. `matching: .tensor` reproduces that arithmetic instead
/// (docs/images.md has the measured differences).
/// Channels are filtered independently (alpha is not premultiplied, unlike PIL's RGBA path).
public struct Resize: Codable, Sendable, Equatable {
    /// Which implementation's integer arithmetic to reproduce.
    public enum Reference: String, Codable, Sendable, CaseIterable {
        /// `PIL.Image.resize(..., BILINEAR)`: torchvision transforms on PIL images.
        case pil
        /// `torchvision.transforms.v2.functional.resize` on a uint8 tensor (antialias=True).
        case tensor
    }

    /// `[shorter side]` or `[height, width]`.
    public var size: [Int]
    /// When resizing the shorter side, the longer side is capped at this (torchvision's
    /// `max_size`).
    public var maxSize: Int?
    /// Whose rounding to reproduce; PIL's by default.
    public var matching: Reference

    public init(_ size: Int, maxSize: Int? = nil, matching: Reference = .pil) {
        self.size = [size]
        self.maxSize = maxSize
        self.matching = matching
    }

    public init(height: Int, width: Int, matching: Reference = .pil) {
        self.size = [height, width]
        self.maxSize = nil
        self.matching = matching
    }

    /// The output (width, height) for an input of `width` × `height`, as torchvision's
    /// `_compute_resized_output_size` computes it.
    public func outputSize(width: Int, height: Int) throws -> (width: Int, height: Int) {
        guard size.allSatisfy({ $0 > 0 }), size.count == 1 || size.count == 2 else {
            throw ImageError.invalidArgument(op: "Resize", message: "size must be [shorter side] or [height, width] of positive values, got \(size)")
        }
        if size.count == 2 { return (size[1], size[0]) }
        let short = min(width, height), long = max(width, height)
        guard short > 0 else {
            throw ImageError.invalidArgument(op: "Resize", message: "cannot resize an empty \(width) x \(height) image")
        }
        var newShort = size[0]
        var newLong = Int(Double(newShort * long) / Double(short))
        if let maxSize {
            guard maxSize > newShort else {
                throw ImageError.invalidArgument(op: "Resize", message: "maxSize \(maxSize) must be larger than size \(newShort)")
            }
            if newLong > maxSize {
                newShort = Int(Double(maxSize * newShort) / Double(newLong))
                newLong = maxSize
            }
        }
        return width <= height ? (newShort, newLong) : (newLong, newShort)
    }

    /// The resized image.
    public func callAsFunction(_ image: Image) throws -> Image {
        let (w, h) = try outputSize(width: image.width, height: image.height)
        return try image.resizedBilinear(width: w, height: h, matching: matching)
    }
}

extension Image {
    /// Antialiased bilinear resize to `width` × `height` with PIL's (default) or PyTorch's
    /// uint8 arithmetic (see ``Resize``).
    public func resizedBilinear(width outWidth: Int, height outHeight: Int, matching: Resize.Reference = .pil) throws -> Image {
        guard outWidth > 0, outHeight > 0, width > 0, height > 0 else {
            throw ImageError.invalidArgument(op: "resize", message: "cannot resize \(width) x \(height) to \(outWidth) x \(outHeight)")
        }
        if outWidth == width && outHeight == height { return self }
        let horizontal = PILFilter(inSize: width, outSize: outWidth, matching: matching)
        let vertical = PILFilter(inSize: height, outSize: outHeight, matching: matching)
        var source = self
        var rowOffset = 0
        if outWidth != width {
            // Only the rows the vertical pass reads are filtered horizontally.
            let first = vertical.start[0]
            let last = vertical.start[outHeight - 1] + vertical.count[outHeight - 1]
            source = horizontalPass(horizontal, rows: first..<last)
            rowOffset = first
        }
        if outHeight != height {
            source = source.verticalPass(vertical, rowOffset: rowOffset)
        }
        return source
    }

    private func horizontalPass(_ f: PILFilter, rows: Range<Int>) -> Image {
        let c = channels, outWidth = f.start.count
        var out = [UInt8](repeating: 0, count: rows.count * outWidth * c)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                f.weights.withUnsafeBufferPointer { k in
                    for (oy, y) in rows.enumerated() {
                        let srcRow = y * width * c
                        let dstRow = oy * outWidth * c
                        for xx in 0..<outWidth {
                            let xmin = f.start[xx], n = f.count[xx], kb = xx * f.kernelSize
                            for ch in 0..<c {
                                var ss = f.half
                                for x in 0..<n {
                                    ss += Int(src[srcRow + (xmin + x) * c + ch]) * Int(k[kb + x])
                                }
                                dst[dstRow + xx * c + ch] = f.clip8(ss)
                            }
                        }
                    }
                }
            }
        }
        return Image(unchecked: outWidth, rows.count, c, out)
    }

    private func verticalPass(_ f: PILFilter, rowOffset: Int) -> Image {
        let c = channels, outHeight = f.start.count, rowLength = width * c
        var out = [UInt8](repeating: 0, count: outHeight * rowLength)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                f.weights.withUnsafeBufferPointer { k in
                    for yy in 0..<outHeight {
                        let ymin = f.start[yy] - rowOffset, n = f.count[yy], kb = yy * f.kernelSize
                        for i in 0..<rowLength {
                            var ss = f.half
                            for y in 0..<n {
                                ss += Int(src[(ymin + y) * rowLength + i]) * Int(k[kb + y])
                            }
                            dst[yy * rowLength + i] = f.clip8(ss)
                        }
                    }
                }
            }
        }
        return Image(unchecked: width, outHeight, c, out)
    }
}

/// Filter taps of PIL's `precompute_coeffs` + `normalize_coeffs_8bpc` (or PyTorch's
/// `compute_index_ranges_int16_weights`) for the bilinear (triangle, support 1) filter along
/// one axis. Both compute the same real weights; they differ in the fixed-point precision.
struct PILFilter {
    /// PIL: `PRECISION_BITS = 32 - 8 - 2`.
    static let pilPrecisionBits = 32 - 8 - 2

    /// First input index of each output's window.
    var start: [Int]
    /// Number of taps of each output's window.
    var count: [Int]
    /// `outSize * kernelSize` fixed-point weights.
    var weights: [Int32]
    var kernelSize: Int
    /// Fractional bits of `weights`.
    var precisionBits: Int

    var half: Int { 1 << (precisionBits - 1) }

    init(inSize: Int, outSize: Int, matching: Resize.Reference = .pil) {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = 1.0 * filterScale
        kernelSize = Int(support.rounded(.up)) * 2 + 1
        start = [Int](repeating: 0, count: outSize)
        count = [Int](repeating: 0, count: outSize)
        var real = [Double](repeating: 0, count: outSize * kernelSize)
        let inverse = 1.0 / filterScale
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            // C's (int) cast truncates toward zero, as Int(_:) does.
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var total = 0.0
            for x in 0..<xmax {
                let t = abs((Double(x + xmin) - center + 0.5) * inverse)
                let w = t < 1 ? 1 - t : 0
                real[xx * kernelSize + x] = w
                total += w
            }
            if total != 0 {
                for x in 0..<xmax { real[xx * kernelSize + x] /= total }
            }
            start[xx] = xmin
            count[xx] = max(xmax, 0)
        }
        switch matching {
        case .pil:
            precisionBits = PILFilter.pilPrecisionBits
        case .tensor:
            // PyTorch: the most fractional bits (< 22) for which the largest weight still fits
            // an int16 after rounding.
            let largest = real.max() ?? 0
            var bits = 0
            while bits < 22 {
                if Int(0.5 + largest * Double(1 << (bits + 1))) >= (1 << 15) { break }
                bits += 1
            }
            precisionBits = max(bits, 1)
        }
        let one = Double(1 << precisionBits)
        weights = real.map { w in Int32(w < 0 ? (-0.5 + w * one) : (0.5 + w * one)) }
    }

    @inline(__always)
    func clip8(_ v: Int) -> UInt8 {
        if v >= (1 << precisionBits) << 8 { return 255 }
        if v <= 0 { return 0 }
        return UInt8(truncatingIfNeeded: v >> precisionBits)
    }
}
