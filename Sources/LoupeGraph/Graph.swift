import LoupeTensor

/// One dimension of a declared value shape: a fixed size or a named symbolic size (`batch`).
public enum Dim: Sendable, Hashable, CustomStringConvertible {
    case fixed(Int)
    case symbolic(String)

    public var description: String {
        switch self {
        case let .fixed(n): return "\(n)"
        case let .symbolic(s): return s.isEmpty ? "?" : s
        }
    }

    public var value: Int? { if case let .fixed(n) = self { return n } else { return nil } }
}

/// A named value's declared type: ONNX element type code and shape (nil when undeclared).
public struct ValueInfo: Sendable, Equatable {
    public var name: String
    /// ONNX `TensorProto.DataType` code (1 = float, 7 = int64, 9 = bool, ...). 0 when unknown.
    public var elementType: Int
    /// Declared dimensions, or nil if the model declares no shape.
    public var shape: [Dim]?

    public init(name: String, elementType: Int = 1, shape: [Dim]? = nil) {
        self.name = name
        self.elementType = elementType
        self.shape = shape
    }

    /// The dims as integers when all are fixed.
    public var staticShape: [Int]? {
        guard let shape else { return nil }
        let fixed = shape.compactMap(\.value)
        return fixed.count == shape.count ? fixed : nil
    }
}

/// An operator attribute value (ONNX `AttributeProto`).
public indirect enum Attribute: Sendable, Equatable {
    case int(Int)
    case float(Float)
    case string(String)
    case tensor(Tensor)
    case graph(Graph)
    case ints([Int])
    case floats([Float])
    case strings([String])
    case tensors([Tensor])
    case graphs([Graph])
}

/// One operation in a graph. Inputs and outputs are value names; an empty input name marks an
/// omitted optional input (ONNX convention).
public struct Node: Sendable, Equatable {
    public var name: String
    public var opType: String
    /// Operator set domain; "" (or "ai.onnx") is the default ONNX domain.
    public var domain: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: Attribute]

    public init(name: String, opType: String, domain: String = "", inputs: [String], outputs: [String],
                attributes: [String: Attribute] = [:]) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    /// The node's name, or "→output" when unnamed.
    public var displayName: String { name.isEmpty ? (outputs.first.map { "→\($0)" } ?? "?") : name }

    /// "name (OpType)" for error messages.
    public var label: String { "\(displayName) (\(opType))" }
}

/// The one model representation: a DAG of nodes over named values, with constant parameters.
///
/// A `Graph` is plain data, as read from or written to ONNX. ``Model`` compiles it for execution.
public struct Graph: Sendable, Equatable {
    public var name: String
    public var nodes: [Node]
    /// Graph inputs that are not initializers (what a caller feeds).
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    /// Declared types of intermediate values, when the file carries them.
    public var valueInfo: [ValueInfo]
    /// Constant tensors (weights), by value name.
    public var initializers: [String: Tensor]
    /// Opset version per domain ("" = default ONNX domain).
    public var opsets: [String: Int]
    /// Free-form metadata (producer name, model version, doc string, metadata_props).
    public var metadata: [String: String]
    /// ONNX element type codes of constants (initializers, Constant outputs) whose Loupe storage
    /// hides them: an int8 or uint8 zero point is held as int64, a float16 weight as float32.
    /// QuantizeLinear reads its output range from it. Not written back on export.
    public var constantElementTypes: [String: Int] = [:]

    public init(name: String = "graph", nodes: [Node] = [], inputs: [ValueInfo] = [], outputs: [ValueInfo] = [],
                valueInfo: [ValueInfo] = [], initializers: [String: Tensor] = [:], opsets: [String: Int] = ["": 17],
                metadata: [String: String] = [:]) {
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.valueInfo = valueInfo
        self.initializers = initializers
        self.opsets = opsets
        self.metadata = metadata
    }

    /// The default-domain opset version.
    public var opset: Int { opsets[""] ?? opsets["ai.onnx"] ?? 17 }

    /// For each value name, the indices in ``nodes`` of the nodes that read it (once per node).
    public func readerIndices() -> [String: [Int]] {
        var readers: [String: [Int]] = [:]
        for (i, node) in nodes.enumerated() { for name in Set(node.inputs) where !name.isEmpty { readers[name, default: []].append(i) } }
        return readers
    }
}
