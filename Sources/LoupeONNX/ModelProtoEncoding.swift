import LoupeGraph
import LoupeTensor

/// Encodes ``Graph`` → `ModelProto` bytes.
///
/// Initializers and tensor attributes are written as `raw_data` in their Loupe storage type
/// (FLOAT, INT64 or BOOL), except integer initializers whose file type was narrower
/// (``Graph/constantElementTypes``: int8/uint8 zero points, int32 biases), which go back in it;
/// float16/double weights come back as FLOAT.
/// Initializers are written in name order so the output is deterministic.
enum ModelEncoder {
    /// The IR version a given default-domain opset needs (onnx/onnx docs/Versioning.md).
    static func irVersion(forOpset opset: Int) -> Int {
        switch opset {
        case ...8: return 4 // IR 4 is the first that lets initializers not be graph inputs
        case 9: return 4
        case 10: return 5
        case 11: return 6
        case 12...14: return 7
        case 15...18: return 8
        case 19...20: return 9
        case 21...22: return 10
        default: return 11
        }
    }

    static func encodeModel(_ graph: Graph) throws -> [UInt8] {
        var w = ProtoWriter()
        let stored = graph.metadata["ir_version"].flatMap { Int64($0) } ?? 0
        w.int(1, max(stored, Int64(irVersion(forOpset: graph.opset))))
        let meta = graph.metadata
        if let v = meta["producer_name"] { w.string(2, v) }
        if let v = meta["producer_version"] { w.string(3, v) }
        if let v = meta["domain"] { w.string(4, v) }
        if let v = meta["model_version"] {
            guard let n = Int64(v) else {
                throw ONNXError.export(message: "metadata 'model_version' is '\(v)', expected an integer")
            }
            w.int(5, n)
        }
        if let v = meta["doc_string"] { w.string(6, v) }
        try w.message(7) { try encodeGraph(graph, into: &$0) }
        for (domain, version) in graph.opsets.sorted(by: { $0.key < $1.key }) {
            w.message(8) {
                if !domain.isEmpty { $0.string(1, domain) }
                $0.int(2, Int64(version))
            }
        }
        for (key, value) in meta.sorted(by: { $0.key < $1.key }) where !ModelDecoder.fieldKeys.contains(key) {
            w.message(14) {
                $0.string(1, key)
                $0.string(2, value)
            }
        }
        return w.bytes
    }

    static func encodeGraph(_ graph: Graph, into w: inout ProtoWriter) throws {
        for node in graph.nodes {
            try w.message(1) { try encodeNode(node, into: &$0) }
        }
        w.string(2, graph.name.isEmpty ? "graph" : graph.name)
        for (name, tensor) in graph.initializers.sorted(by: { $0.key < $1.key }) {
            // A narrow integer initializer (an int8 zero point) goes back in its file type, which
            // QuantizeLinear's output range depends on.
            if case let .int64(values) = tensor.storage, let code = graph.constantElementTypes[name],
               let width = integerWidth(code) {
                w.message(5) { encodeNarrowIntegers(values, shape: tensor.shape, code: code, width: width, name: name, into: &$0) }
            } else {
                w.message(5) { encodeTensor(tensor, name: name, into: &$0) }
            }
        }
        for v in graph.inputs { w.message(11) { encodeValueInfo(v, into: &$0) } }
        for v in graph.outputs { w.message(12) { encodeValueInfo(v, into: &$0) } }
        for v in graph.valueInfo { w.message(13) { encodeValueInfo(v, into: &$0) } }
    }

    static func encodeNode(_ node: Node, into w: inout ProtoWriter) throws {
        for i in node.inputs { w.string(1, i) }
        for o in node.outputs { w.string(2, o) }
        if !node.name.isEmpty { w.string(3, node.name) }
        w.string(4, node.opType)
        for (name, value) in node.attributes.sorted(by: { $0.key < $1.key }) {
            try w.message(5) { try encodeAttribute(name, value, into: &$0) }
        }
        if !node.domain.isEmpty { w.string(7, node.domain) }
    }

    static func encodeAttribute(_ name: String, _ value: Attribute, into w: inout ProtoWriter) throws {
        w.string(1, name)
        switch value {
        case let .float(f): w.float(2, f); w.int(20, 1)
        case let .int(i): w.int(3, Int64(i)); w.int(20, 2)
        case let .string(s): w.string(4, s); w.int(20, 3)
        case let .tensor(t): w.message(5) { encodeTensor(t, name: "", into: &$0) }; w.int(20, 4)
        case let .graph(g): try w.message(6) { try encodeGraph(g, into: &$0) }; w.int(20, 5)
        case let .floats(a): w.packedFloats(7, a); w.int(20, 6)
        case let .ints(a): w.packedInts(8, a.map { Int64($0) }); w.int(20, 7)
        case let .strings(a): for s in a { w.string(9, s) }; w.int(20, 8)
        case let .tensors(a): for t in a { w.message(10) { encodeTensor(t, name: "", into: &$0) } }; w.int(20, 9)
        case let .graphs(a): for g in a { try w.message(11) { try encodeGraph(g, into: &$0) } }; w.int(20, 10)
        }
    }

    /// A `TensorProto` with little-endian `raw_data`.
    static func encodeTensor(_ t: Tensor, name: String, into w: inout ProtoWriter) {
        w.packedInts(1, t.shape.map { Int64($0) })
        w.int(2, Int64(ONNXDataType.code(for: t.dtype)))
        if !name.isEmpty { w.string(8, name) }
        w.data(9, rawBytes(t.storage))
    }

    /// Bytes per element of the ONNX integer types narrower than int64 (uint64 included), else nil.
    static func integerWidth(_ code: Int) -> Int? {
        switch code {
        case 2, 3: return 1      // uint8, int8
        case 4, 5: return 2      // uint16, int16
        case 6, 12: return 4     // int32, uint32
        case 13: return 8        // uint64
        default: return nil
        }
    }

    /// A `TensorProto` of integer type `code`, each value's low `width` bytes little-endian
    /// (the values came from that type on import, so they fit).
    static func encodeNarrowIntegers(_ values: [Int64], shape: [Int], code: Int, width: Int, name: String, into w: inout ProtoWriter) {
        w.packedInts(1, shape.map { Int64($0) })
        w.int(2, Int64(code))
        w.string(8, name)
        w.data(9, values.flatMap { v in (0..<width).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } })
    }

    static func rawBytes(_ storage: Tensor.Storage) -> [UInt8] {
        switch storage {
        case let .float32(a):
            #if _endian(little)
            return a.withUnsafeBytes { [UInt8]($0) }
            #else
            return a.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) } }
            #endif
        case let .int64(a):
            #if _endian(little)
            return a.withUnsafeBytes { [UInt8]($0) }
            #else
            return a.flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
            #endif
        case let .bool(a):
            return a.map { $0 ? 1 : 0 }
        }
    }

    static func encodeValueInfo(_ v: ValueInfo, into w: inout ProtoWriter) {
        w.string(1, v.name)
        guard v.elementType != 0 || v.shape != nil else { return }
        w.message(2) { type in
            type.message(1) { tensorType in
                if v.elementType != 0 { tensorType.int(1, Int64(v.elementType)) }
                if let shape = v.shape {
                    tensorType.message(2) { s in
                        for d in shape {
                            s.message(1) { dim in
                                switch d {
                                case let .fixed(n): dim.int(1, Int64(n))
                                case let .symbolic(p): if !p.isEmpty { dim.string(2, p) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
