import Foundation

/// NumPy `.npy` files (format versions 1.0, 2.0 and 3.0,
/// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html).
///
/// Reading accepts little- or big-endian `f2`/`f4`/`f8` (stored as float32), `i1`…`i8` and
/// `u1`…`u8` (stored as int64; `u8` values above `Int64.max` keep their bit pattern) and `b1`
/// (bool), in C or Fortran order (Fortran-order data is transposed into Loupe's row-major
/// layout). Writing produces version 1.0 files in the tensor's own type (`<f4`, `<i8`, `|b1`)
/// with the same header layout `numpy.save` writes.
extension Tensor {
    /// Reads a `.npy` file.
    public init(npyFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw TensorError.io(path: path, message: exists ? "cannot be read" : "no such file")
        }
        self = try Tensor(npyBytes: [UInt8](data), fileName: path)
    }

    /// Reads a `.npy` file; same as ``init(npyFile:)``.
    public static func readNPY(path: String) throws -> Tensor {
        try Tensor(npyFile: path)
    }

    /// Decodes the bytes of a `.npy` file; `fileName` names the source in errors.
    public init(npyBytes bytes: [UInt8], fileName: String = "<bytes>") throws {
        self = try NPYReader(bytes: bytes, file: fileName).read()
    }

    /// Writes the tensor as a `.npy` version 1.0 file.
    public func writeNPY(path: String) throws {
        do {
            try Data(npyBytes()).write(to: URL(fileURLWithPath: path))
        } catch {
            throw TensorError.io(path: path, message: "cannot write: \(error.localizedDescription)")
        }
    }

    /// The bytes of a `.npy` file holding this tensor (version 1.0, or 2.0 if the header
    /// would not fit in 65,535 bytes).
    public func npyBytes() -> [UInt8] {
        let descr: String
        let data: [UInt8]
        switch storage {
        case let .float32(a):
            descr = "<f4"
            #if _endian(little)
            data = a.withUnsafeBytes { [UInt8]($0) }
            #else
            data = a.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) } }
            #endif
        case let .int64(a):
            descr = "<i8"
            #if _endian(little)
            data = a.withUnsafeBytes { [UInt8]($0) }
            #else
            data = a.flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
            #endif
        case let .bool(a):
            descr = "|b1"
            data = a.map { $0 ? 1 : 0 }
        }
        let shapeText: String
        switch shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(shape[0]),)"
        default: shapeText = "(" + shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        // numpy leaves room for the first axis to grow to 21 digits, then pads to 64 bytes.
        if let first = shape.first { header += String(repeating: " ", count: max(0, 21 - String(first).count)) }
        var headerBytes = Array(header.utf8)
        let version: UInt8 = headerBytes.count + 1 + 10 + 64 <= 65_535 ? 1 : 2
        let prefixLength = version == 1 ? 10 : 12
        let unpadded = prefixLength + headerBytes.count + 1
        headerBytes += [UInt8](repeating: 0x20, count: (64 - unpadded % 64) % 64) + [0x0A]
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
        let n = headerBytes.count
        out += version == 1 ? [UInt8(n & 0xFF), UInt8(n >> 8)]
                            : (0..<4).map { UInt8(truncatingIfNeeded: n >> (8 * $0)) }
        out += headerBytes
        out += data
        return out
    }
}

/// Parses one `.npy` file's bytes.
private struct NPYReader {
    let bytes: [UInt8]
    let file: String

    func fail(_ message: String) -> TensorError { .io(path: file, message: message) }

    func read() throws -> Tensor {
        let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
        guard bytes.count >= 10 else {
            throw fail(bytes.isEmpty ? "the file is empty; expected a .npy file" : "only \(bytes.count) bytes; too short for a .npy header")
        }
        guard Array(bytes[0..<6]) == magic else { throw fail("not a .npy file (missing the \\x93NUMPY magic)") }
        let major = bytes[6]
        let headerStart: Int, headerLength: Int
        switch major {
        case 1:
            headerStart = 10
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated .npy version \(major) header") }
            headerStart = 12
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        default:
            throw fail(".npy format version \(major).\(bytes[7]) is not supported (expected 1, 2 or 3)")
        }
        guard headerLength <= bytes.count - headerStart else {
            throw fail("header claims \(headerLength) bytes but the file has \(bytes.count - headerStart) after the prefix (truncated?)")
        }
        let headerText = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        let header = try parseHeader(headerText)
        let dataStart = headerStart + headerLength

        var count = 1
        for d in header.shape {
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw fail("shape \(header.shape) is too large") }
            count = p
        }
        let (needed, overflow) = count.multipliedReportingOverflow(by: header.itemSize)
        guard !overflow else { throw fail("shape \(header.shape) is too large") }
        let available = bytes.count - dataStart
        guard available == needed else {
            throw fail("shape \(header.shape) of '\(header.descr)' needs \(needed) bytes of data, the file has \(available)"
                + (available < needed ? " (truncated?)" : ""))
        }
        let storage = try decodeData(header, at: dataStart, count: count)
        guard header.fortranOrder, header.shape.count > 1 else {
            return try Tensor(shape: header.shape, storage: storage)
        }
        return try Tensor(shape: header.shape, storage: fortranToC(storage, shape: header.shape))
    }

    struct Header {
        var descr: String
        var littleEndian: Bool
        var kind: Character
        var itemSize: Int
        var fortranOrder: Bool
        var shape: [Int]
    }

    /// Reads the Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
    func parseHeader(_ text: String) throws -> Header {
        var descr: String?, fortran: Bool?, shape: [Int]?
        var s = Substring(text)
        func skipSpace() { s = s.drop(while: { $0 == " " || $0 == "\n" || $0 == "\t" }) }
        func expect(_ c: Character) throws {
            skipSpace()
            guard s.first == c else { throw fail("header \(text.debugDescription): expected '\(c)' at '\(s.prefix(12))'") }
            s = s.dropFirst()
        }
        func quoted() throws -> String {
            skipSpace()
            guard let q = s.first, q == "'" || q == "\"" else {
                throw fail("header \(text.debugDescription): expected a quoted string at '\(s.prefix(12))'")
            }
            s = s.dropFirst()
            guard let end = s.firstIndex(of: q) else { throw fail("header \(text.debugDescription): unterminated string") }
            let value = String(s[..<end])
            s = s[s.index(after: end)...]
            return value
        }
        try expect("{")
        while true {
            skipSpace()
            if s.first == "}" { break }
            let key = try quoted()
            try expect(":")
            skipSpace()
            switch key {
            case "descr":
                guard s.first == "'" || s.first == "\"" else {
                    throw fail("structured dtype \(s.prefix(40)) is not supported; expected a plain dtype such as '<f4'")
                }
                descr = try quoted()
            case "fortran_order":
                if s.hasPrefix("True") { fortran = true; s = s.dropFirst(4) }
                else if s.hasPrefix("False") { fortran = false; s = s.dropFirst(5) }
                else { throw fail("header: fortran_order must be True or False") }
            case "shape":
                try expect("(")
                var dims: [Int] = []
                while true {
                    skipSpace()
                    if s.first == ")" { s = s.dropFirst(); break }
                    let digits = s.prefix(while: { $0.isASCII && $0.isNumber })
                    guard !digits.isEmpty, let d = Int(digits) else {
                        throw fail("header: shape must be a tuple of non-negative integers, got '\(s.prefix(20))'")
                    }
                    dims.append(d)
                    s = s.dropFirst(digits.count)
                    skipSpace()
                    if s.first == "," { s = s.dropFirst() }
                }
                shape = dims
            default:
                throw fail("header has unknown key '\(key)'")
            }
            skipSpace()
            if s.first == "," { s = s.dropFirst() } else { try expect("}"); break }
        }
        guard let descr, let fortran, let shape else {
            throw fail("header \(text.debugDescription) lacks one of 'descr', 'fortran_order', 'shape'")
        }
        let chars = Array(descr)
        guard chars.count >= 3, "<>|=".contains(chars[0]), let size = Int(String(chars[2...])) else {
            throw fail("dtype '\(descr)' is not supported; expected e.g. '<f4', '<i8', '|b1'")
        }
        let kind = chars[1]
        let supported: [Character: Set<Int>] = ["f": [2, 4, 8], "i": [1, 2, 4, 8], "u": [1, 2, 4, 8], "b": [1]]
        guard supported[kind]?.contains(size) == true else {
            throw fail("dtype '\(descr)' is not supported; Loupe reads f2/f4/f8, i1-i8, u1-u8 and b1")
        }
        #if _endian(little)
        let little = chars[0] != ">"
        #else
        let little = chars[0] == "<"
        #endif
        return Header(descr: descr, littleEndian: little, kind: kind, itemSize: size, fortranOrder: fortran, shape: shape)
    }

    func decodeData(_ h: Header, at start: Int, count: Int) throws -> Tensor.Storage {
        return bytes.withUnsafeBytes { raw -> Tensor.Storage in
            let base = UnsafeRawBufferPointer(rebasing: raw[start...])
            func word(_ i: Int) -> UInt64 {
                var v: UInt64 = 0
                for b in 0..<h.itemSize {
                    let byte = UInt64(base[i * h.itemSize + (h.littleEndian ? b : h.itemSize - 1 - b)])
                    v |= byte << (8 * UInt64(b))
                }
                return v
            }
            switch (h.kind, h.itemSize) {
            case ("f", 2): return .float32((0..<count).map { halfBitsToFloat(UInt16(truncatingIfNeeded: word($0))) })
            case ("f", 4): return .float32((0..<count).map { Float(bitPattern: UInt32(truncatingIfNeeded: word($0))) })
            case ("f", _): return .float32((0..<count).map { Float(Double(bitPattern: word($0))) })
            case ("b", _): return .bool((0..<count).map { base[$0] != 0 })
            case ("u", _): return .int64((0..<count).map { Int64(bitPattern: word($0)) })
            default:
                // Sign-extend from itemSize bytes.
                let shift = UInt64(64 - 8 * h.itemSize)
                return .int64((0..<count).map { Int64(bitPattern: word($0) << shift) >> shift })
            }
        }
    }

    /// Reorders column-major elements into row-major order.
    func fortranToC(_ storage: Tensor.Storage, shape: [Int]) -> Tensor.Storage {
        // Column-major strides: the first axis varies fastest.
        var fStrides = [Int](repeating: 1, count: shape.count)
        for a in 1..<shape.count { fStrides[a] = fStrides[a - 1] * shape[a - 1] }
        let count = shape.reduce(1, *)
        var sourceIndex = [Int](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: shape.count)
        for i in 0..<count {
            var offset = 0
            for a in 0..<shape.count { offset += index[a] * fStrides[a] }
            sourceIndex[i] = offset
            var a = shape.count - 1
            while a >= 0 {
                index[a] += 1
                if index[a] < shape[a] { break }
                index[a] = 0
                a -= 1
            }
        }
        switch storage {
        case let .float32(v): return .float32(sourceIndex.map { v[$0] })
        case let .int64(v): return .int64(sourceIndex.map { v[$0] })
        case let .bool(v): return .bool(sourceIndex.map { v[$0] })
        }
    }
}

/// IEEE binary16 → Float without relying on `Float16` (unavailable on macOS/Intel).
private func halfBitsToFloat(_ h: UInt16) -> Float {
    let sign: Float = h & 0x8000 != 0 ? -1 : 1
    let exponent = Int(h >> 10) & 0x1F
    let mantissa = Float(h & 0x03FF)
    switch exponent {
    case 0: return sign * mantissa * 0x1p-24
    case 0x1F: return mantissa == 0 ? sign * .infinity : .nan
    default: return sign * (1 + mantissa / 1024) * Float(sign: .plus, exponent: exponent - 15, significand: 1)
    }
}
