import LoupeGraph
import LoupeTensor

/// Decodes `ModelProto` → ``Graph`` (field numbers from onnx/onnx.proto3, IR version ≤ 11).
///
/// Unknown fields are skipped, so newer files with extra fields still load. Graph inputs that
/// also have an initializer are constants, not inputs (IR ≥ 4 / opset ≥ 9 semantics).
struct ModelDecoder {
    var context: DecodeContext

    /// Metadata keys filled from `ModelProto` fields (the rest come from `metadata_props`).
    static let fieldKeys: Set<String> = ["ir_version", "producer_name", "producer_version", "domain",
                                         "model_version", "doc_string"]

    func decodeModel(_ bytes: UnsafeBufferPointer<UInt8>) throws -> Graph {
        guard !bytes.isEmpty else {
            throw ONNXError.malformed(file: context.file, offset: 0, message: "the file is empty; expected an ONNX ModelProto")
        }
        var r = ProtoReader(buffer: bytes, file: context.file, path: "")
        var graphReader: ProtoReader?
        var opsets: [String: Int] = [:]
        var fields: [String: String] = [:]
        var props: [String: String] = [:]
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1: fields["ir_version"] = String(try r.readInt64(wire, field: "ir_version"))
            case 2: fields["producer_name"] = try r.readString(wire, field: "producer_name")
            case 3: fields["producer_version"] = try r.readString(wire, field: "producer_version")
            case 4: fields["domain"] = try r.readString(wire, field: "domain")
            case 5: fields["model_version"] = String(try r.readInt64(wire, field: "model_version"))
            case 6: fields["doc_string"] = try r.readString(wire, field: "doc_string")
            case 7: graphReader = try r.readMessage(wire, field: "graph", path: "graph")
            case 8:
                var o = try r.readMessage(wire, field: "opset_import", path: "opset_import")
                var domain = "", version: Int64 = 0
                while let (f, w) = try o.nextField() {
                    switch f {
                    case 1: domain = try o.readString(w, field: "domain")
                    case 2: version = try o.readInt64(w, field: "version")
                    default: try o.skip(w, field: f)
                    }
                }
                opsets[domain == "ai.onnx" ? "" : domain] = Int(version)
            case 14:
                var p = try r.readMessage(wire, field: "metadata_props", path: "metadata_props")
                let (k, v) = try p.readStringPair()
                props[k] = v
            default: try r.skip(wire, field: field)
            }
        }
        guard var g = graphReader else {
            throw ONNXError.malformed(file: context.file, offset: 0,
                                      message: "not an ONNX model: no graph (ModelProto field 7) in \(bytes.count) bytes")
        }
        var graph = try decodeGraph(&g, opsets: opsets)
        graph.metadata = props.merging(fields) { _, field in field }
        return graph
    }

    /// A `GraphProto`. Subgraphs (If/Loop/Scan bodies) get the model's opsets.
    func decodeGraph(_ r: inout ProtoReader, opsets: [String: Int]) throws -> Graph {
        var graph = Graph(name: "", opsets: opsets)
        var declaredInputs: [ValueInfo] = []
        var initializers: [String: Tensor] = [:]
        // Element types that Loupe's storage does not show (int8/uint8/int32... stored as int64,
        // float16/double as float32), for the declared value types below.
        var narrowTypes: [(name: String, code: Int)] = []
        var nodeIndex = 0, initIndex = 0
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1:
                var n = try r.readMessage(wire, field: "node", path: "node[\(nodeIndex)]")
                let (node, constantType) = try decodeNode(&n, opsets: opsets)
                graph.nodes.append(node)
                if let code = constantType, let out = node.outputs.first, !Self.isStorageCode(code) {
                    narrowTypes.append((out, code))
                }
                nodeIndex += 1
            case 2: graph.name = try r.readString(wire, field: "name")
            case 5:
                var t = try r.readMessage(wire, field: "initializer", path: "initializer[\(initIndex)]")
                let at = r.fieldStart
                let (name, tensor, code) = try t.readTypedTensor(context)
                guard initializers.updateValue(tensor, forKey: name) == nil else {
                    throw r.malformed("initializer '\(name)' is defined twice", at: at)
                }
                if !Self.isStorageCode(code) { narrowTypes.append((name, code)) }
                initIndex += 1
            case 11:
                var v = try r.readMessage(wire, field: "input", path: "input[\(declaredInputs.count)]")
                declaredInputs.append(try decodeValueInfo(&v))
            case 12:
                var v = try r.readMessage(wire, field: "output", path: "output[\(graph.outputs.count)]")
                graph.outputs.append(try decodeValueInfo(&v))
            case 13:
                var v = try r.readMessage(wire, field: "value_info", path: "value_info[\(graph.valueInfo.count)]")
                graph.valueInfo.append(try decodeValueInfo(&v))
            case 15:
                throw ONNXError.unsupported(file: context.file, message: "\(r.pathPrefix)sparse_initializer (sparse tensors) at byte \(r.fieldStart)")
            default: try r.skip(wire, field: field)
            }
        }
        graph.inputs = declaredInputs.filter { initializers[$0.name] == nil }
        graph.initializers = initializers
        for t in narrowTypes { graph.constantElementTypes[t.name] = t.code }
        return graph
    }

    /// True for the ONNX codes of Loupe's own storage types (float, int64, bool), whose tensors
    /// carry their type.
    static func isStorageCode(_ code: Int) -> Bool { code == 1 || code == 7 || code == 9 }

    /// A `NodeProto`, and for a Constant node the element type code of its `value`.
    func decodeNode(_ r: inout ProtoReader, opsets: [String: Int]) throws -> (Node, Int?) {
        var node = Node(name: "", opType: "", inputs: [], outputs: [])
        var valueType: Int?
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1: node.inputs.append(try r.readString(wire, field: "input"))
            case 2: node.outputs.append(try r.readString(wire, field: "output"))
            case 3: node.name = try r.readString(wire, field: "name")
            case 4: node.opType = try r.readString(wire, field: "op_type")
            case 7: node.domain = try r.readString(wire, field: "domain")
            case 5:
                let at = r.fieldStart
                var a = try r.readMessage(wire, field: "attribute", path: "attribute[\(node.attributes.count)]")
                let (name, value, tensorType) = try decodeAttribute(&a, opsets: opsets)
                guard node.attributes.updateValue(value, forKey: name) == nil else {
                    throw r.malformed("node '\(node.name)' has attribute '\(name)' twice", at: at)
                }
                if name == "value", let tensorType, case .tensor = value { valueType = tensorType }
            default: try r.skip(wire, field: field)
            }
        }
        guard !node.opType.isEmpty else { throw r.malformed("node '\(node.name)' has no op_type", at: r.end) }
        return (node, node.opType == "Constant" ? valueType : nil)
    }

    /// An `AttributeProto`, with the file's element type code of a TENSOR attribute.
    func decodeAttribute(_ r: inout ProtoReader, opsets: [String: Int]) throws -> (String, Attribute, Int?) {
        var name = "", type: Int32 = 0
        var f: Float?, i: Int64?, s: String?, t: Tensor?, g: Graph?, tType: Int?
        var floats: [Float] = [], ints: [Int64] = [], strings: [String] = []
        var tensors: [Tensor] = [], graphs: [Graph] = []
        var sparse = false
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1: name = try r.readString(wire, field: "name")
            case 20: type = try r.readInt32(wire, field: "type")
            case 2: f = try r.readFloat(wire, field: "f")
            case 3: i = try r.readInt64(wire, field: "i")
            case 4: s = try r.readString(wire, field: "s")
            case 5:
                var sub = try r.readMessage(wire, field: "t", path: "t")
                let typed = try sub.readTypedTensor(context)
                (t, tType) = (typed.tensor, typed.dataType)
            case 6:
                var sub = try r.readMessage(wire, field: "g", path: "g")
                g = try decodeGraph(&sub, opsets: opsets)
            case 7: try r.appendFloats(wire, field: "floats", into: &floats)
            case 8: try r.appendInt64s(wire, field: "ints", into: &ints)
            case 9: strings.append(try r.readString(wire, field: "strings"))
            case 10:
                var sub = try r.readMessage(wire, field: "tensors", path: "tensors[\(tensors.count)]")
                tensors.append(try sub.readTensor(context).tensor)
            case 11:
                var sub = try r.readMessage(wire, field: "graphs", path: "graphs[\(graphs.count)]")
                graphs.append(try decodeGraph(&sub, opsets: opsets))
            case 22, 23, 14, 15: sparse = true; try r.skip(wire, field: field)
            default: try r.skip(wire, field: field)
            }
        }
        func missing(_ what: String) -> ONNXError {
            r.malformed("attribute '\(name)' of type \(what) has no value", at: r.end)
        }
        guard !name.isEmpty else { throw r.malformed("attribute without a name", at: r.end) }
        switch type {
        case 1: return (name, .float(f ?? 0), nil)
        case 2: return (name, .int(Int(i ?? 0)), nil)
        case 3: return (name, .string(s ?? ""), nil)
        case 4: guard let t else { throw missing("TENSOR") }; return (name, .tensor(t), tType)
        case 5: guard let g else { throw missing("GRAPH") }; return (name, .graph(g), nil)
        case 6: return (name, .floats(floats), nil)
        case 7: return (name, .ints(ints.map { Int($0) }), nil)
        case 8: return (name, .strings(strings), nil)
        case 9: return (name, .tensors(tensors), nil)
        case 10: return (name, .graphs(graphs), nil)
        case 11, 12, 13, 14:
            let kinds: [Int32: String] = [11: "SPARSE_TENSOR", 12: "SPARSE_TENSORS", 13: "TYPE_PROTO", 14: "TYPE_PROTOS"]
            throw ONNXError.unsupported(file: context.file, message: "\(r.pathPrefix)attribute '\(name)' has type \(kinds[type] ?? "")")
        case 0:
            // IR < 3 files may omit the type; infer it from the field that is set.
            if let t { return (name, .tensor(t), tType) }
            if let g { return (name, .graph(g), nil) }
            if !floats.isEmpty { return (name, .floats(floats), nil) }
            if !ints.isEmpty { return (name, .ints(ints.map { Int($0) }), nil) }
            if !strings.isEmpty { return (name, .strings(strings), nil) }
            if !tensors.isEmpty { return (name, .tensors(tensors), nil) }
            if !graphs.isEmpty { return (name, .graphs(graphs), nil) }
            if let s { return (name, .string(s), nil) }
            if let f { return (name, .float(f), nil) }
            if let i { return (name, .int(Int(i)), nil) }
            if sparse {
                throw ONNXError.unsupported(file: context.file, message: "\(r.pathPrefix)attribute '\(name)' holds a sparse tensor or type proto")
            }
            throw r.malformed("attribute '\(name)' has no type and no value", at: r.end)
        default:
            throw r.malformed("attribute '\(name)' has unknown type \(type)", at: r.end)
        }
    }

    /// A `ValueInfoProto`. Non-tensor types (sequence, map, optional) give element type 0 and
    /// no shape.
    func decodeValueInfo(_ r: inout ProtoReader) throws -> ValueInfo {
        var info = ValueInfo(name: "", elementType: 0, shape: nil)
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1: info.name = try r.readString(wire, field: "name")
            case 2:
                var type = try r.readMessage(wire, field: "type", path: "type")
                while let (f, w) = try type.nextField() {
                    guard f == 1 else { try type.skip(w, field: f); continue }
                    var tensorType = try type.readMessage(w, field: "tensor_type", path: "tensor_type")
                    while let (tf, tw) = try tensorType.nextField() {
                        switch tf {
                        case 1: info.elementType = Int(try tensorType.readInt32(tw, field: "elem_type"))
                        case 2:
                            var shape = try tensorType.readMessage(tw, field: "shape", path: "shape")
                            info.shape = try decodeShape(&shape)
                        default: try tensorType.skip(tw, field: tf)
                        }
                    }
                }
            default: try r.skip(wire, field: field)
            }
        }
        return info
    }

    func decodeShape(_ r: inout ProtoReader) throws -> [Dim] {
        var dims: [Dim] = []
        while let (field, wire) = try r.nextField() {
            guard field == 1 else { try r.skip(wire, field: field); continue }
            var d = try r.readMessage(wire, field: "dim", path: "dim[\(dims.count)]")
            var dim = Dim.symbolic("")
            while let (f, w) = try d.nextField() {
                switch f {
                case 1: dim = .fixed(Int(try d.readInt64(w, field: "dim_value")))
                case 2: dim = .symbolic(try d.readString(w, field: "dim_param"))
                default: try d.skip(w, field: f)
                }
            }
            dims.append(dim)
        }
        return dims
    }
}
