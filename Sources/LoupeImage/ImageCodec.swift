import CImageShims
import Foundation

/// Image file formats Loupe reads and writes.
public enum ImageFormat: String, Sendable, Equatable, Codable, CaseIterable {
    case png
    case jpeg

    /// Human-readable name for messages.
    public var name: String { self == .png ? "PNG" : "JPEG" }

    /// The format of `bytes`, from their magic numbers (PNG: the 8-byte signature
    /// 89 50 4E 47 0D 0A 1A 0A; JPEG: the SOI marker FF D8 followed by a marker byte FF), or
    /// nil. File extensions are never consulted.
    public static func sniff<C: Collection>(_ bytes: C) -> ImageFormat? where C.Element == UInt8 {
        let head = Array(bytes.prefix(8))
        if head == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
        if head.count >= 3, head[0] == 0xFF, head[1] == 0xD8, head[2] == 0xFF { return .jpeg }
        return nil
    }

    /// The format implied by a file name's extension, for writing (`.png`, `.jpg`, `.jpeg`).
    public static func forWriting(path: String) -> ImageFormat? {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "png": return .png
        case "jpg", "jpeg": return .jpeg
        default: return nil
        }
    }
}

extension Image {
    /// Largest decoded image accepted, in bytes of samples (1 GiB): guards against crafted
    /// headers that claim enormous sizes.
    public static let decodeLimitBytes = 1 << 30

    /// Reads and decodes a PNG or JPEG file; the format is sniffed from its first bytes.
    public init(contentsOfFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            throw ImageError.io(path: path, message: !exists ? "no such file" : isDirectory.boolValue ? "is a directory" : "cannot be read")
        }
        try self.init(data: [UInt8](data), name: path)
    }

    /// Decodes PNG or JPEG bytes, sniffing the format; `name` identifies the source in errors.
    public init(data: [UInt8], name: String = "<bytes>") throws {
        guard !data.isEmpty else { throw ImageError.empty(path: name) }
        switch ImageFormat.sniff(data) {
        case .png: try self.init(pngData: data, name: name)
        case .jpeg: try self.init(jpegData: data, name: name)
        case nil:
            let magic = data.prefix(8).map { String(format: "%02X", $0) }.joined(separator: " ")
            throw ImageError.unknownFormat(path: name, magic: magic)
        }
    }

    /// Decodes a PNG: bit depths 1–16, gray, gray+alpha, RGB, RGBA and palette images,
    /// interlaced or not. Palettes are expanded to RGB (RGBA when the file has a tRNS chunk),
    /// tRNS on gray/RGB becomes an alpha channel, and gAMA/iCCP chunks are ignored (samples are
    /// kept as stored, as PIL does).
    ///
    /// 16-bit samples are decoded at full precision and rounded to the nearest 8-bit value,
    /// `(v * 255 + 32767) / 65535`. PIL instead keeps the high byte (`v >> 8`) for 16-bit RGB,
    /// which can be one lower; see docs/images.md.
    public init(pngData data: [UInt8], name: String = "<bytes>") throws {
        guard !data.isEmpty else { throw ImageError.empty(path: name) }
        var result = loupe_image_result()
        data.withUnsafeBufferPointer { p in
            loupe_png_decode(p.baseAddress, p.count, Image.decodeLimitBytes, &result)
        }
        self = try Image.take(&result, format: .png, name: name)
    }

    /// Decodes a baseline or progressive JPEG to gray (1 channel) or RGB (3 channels) with
    /// libjpeg-turbo's defaults (ISLOW integer IDCT, fancy upsampling), the settings PIL uses.
    /// CMYK/YCCK files throw ``ImageError/unsupported(path:format:message:)``; a file that ends
    /// before its image data does throws ``ImageError/corrupt(path:format:message:)``.
    public init(jpegData data: [UInt8], name: String = "<bytes>") throws {
        guard !data.isEmpty else { throw ImageError.empty(path: name) }
        var result = loupe_image_result()
        data.withUnsafeBufferPointer { p in
            loupe_jpeg_decode(p.baseAddress, p.count, Image.decodeLimitBytes, &result)
        }
        self = try Image.take(&result, format: .jpeg, name: name)
    }

    /// Moves a decoder's pixels into an `Image` (converting 16-bit samples) and frees them.
    private static func take(_ result: inout loupe_image_result, format: ImageFormat, name: String) throws -> Image {
        defer { loupe_image_free(result.data); result.data = nil }
        let message = Image.message(&result)
        switch Int(result.status) {
        case Int(LOUPE_IMAGE_OK): break
        case Int(LOUPE_IMAGE_UNSUPPORTED): throw ImageError.unsupported(path: name, format: format, message: message)
        case Int(LOUPE_IMAGE_TOO_LARGE):
            throw ImageError.tooLarge(path: name, width: Int(result.width), height: Int(result.height), limitBytes: decodeLimitBytes)
        default: throw ImageError.corrupt(path: name, format: format, message: message)
        }
        let width = Int(result.width), height = Int(result.height), channels = Int(result.channels)
        let count = width * height * channels
        guard let data = result.data, (1...4).contains(channels) else {
            if count == 0 { return Image(unchecked: width, height, max(channels, 1), []) }
            throw ImageError.corrupt(path: name, format: format, message: "decoder returned no pixels")
        }
        if result.bit_depth == 16 {
            let samples = UnsafeRawPointer(data).bindMemory(to: UInt16.self, capacity: count)
            let pixels = [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
                for i in 0..<count {
                    out[i] = UInt8(truncatingIfNeeded: (UInt32(samples[i]) * 255 + 32767) / 65535)
                }
                initialized = count
            }
            return Image(unchecked: width, height, channels, pixels)
        }
        let pixels = [UInt8](UnsafeBufferPointer(start: data, count: count))
        return Image(unchecked: width, height, channels, pixels)
    }

    private static func message(_ result: inout loupe_image_result) -> String {
        withUnsafeBytes(of: &result.message) { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            let end = bytes.firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes[..<end], as: UTF8.self)
        }
    }

    /// The image encoded as an 8-bit PNG (non-interlaced, zlib default compression).
    public func pngData() throws -> [UInt8] {
        guard width > 0, height > 0 else {
            throw ImageError.invalidArgument(op: "pngData", message: "cannot encode an empty \(width) x \(height) image")
        }
        var result = loupe_image_result()
        pixels.withUnsafeBufferPointer { p in
            loupe_png_encode(p.baseAddress, UInt32(width), UInt32(height), Int32(channels), &result)
        }
        return try Image.takeEncoded(&result, op: "pngData")
    }

    /// The image encoded as a baseline JPEG with `quality` 1–100 (4:2:0 chroma subsampling).
    /// Alpha is dropped (JPEG has none): gray+alpha becomes gray, RGBA becomes RGB.
    public func jpegData(quality: Int = 90) throws -> [UInt8] {
        guard width > 0, height > 0 else {
            throw ImageError.invalidArgument(op: "jpegData", message: "cannot encode an empty \(width) x \(height) image")
        }
        guard (1...100).contains(quality) else {
            throw ImageError.invalidArgument(op: "jpegData", message: "quality must be 1-100, got \(quality)")
        }
        let opaque = hasAlpha ? try converted(toChannels: channels - 1) : self
        var result = loupe_image_result()
        opaque.pixels.withUnsafeBufferPointer { p in
            loupe_jpeg_encode(p.baseAddress, UInt32(width), UInt32(height), Int32(opaque.channels), Int32(quality), &result)
        }
        return try Image.takeEncoded(&result, op: "jpegData")
    }

    private static func takeEncoded(_ result: inout loupe_image_result, op: String) throws -> [UInt8] {
        defer { loupe_image_free(result.data); result.data = nil }
        guard result.status == LOUPE_IMAGE_OK, let data = result.data else {
            throw ImageError.invalidArgument(op: op, message: message(&result))
        }
        return [UInt8](UnsafeBufferPointer(start: data, count: result.size))
    }

    /// Encodes the image and writes it to `path`. The format is `format`, or else taken from
    /// the extension (`.png`, `.jpg`, `.jpeg`).
    public func write(toFile path: String, format: ImageFormat? = nil, quality: Int = 90) throws {
        guard let format = format ?? ImageFormat.forWriting(path: path) else {
            throw ImageError.io(path: path, message: "cannot tell the image format from the extension; use .png, .jpg or .jpeg")
        }
        let bytes = format == .png ? try pngData() : try jpegData(quality: quality)
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        } catch {
            throw ImageError.io(path: path, message: "cannot write: \(error.localizedDescription)")
        }
    }
}
