import LoupeTensor

/// What an operator factory sees when a model is compiled: the node, the opset in force, and
/// the inputs whose values are already known (initializers and folded constants).
///
/// The typed attribute readers throw ``GraphError/badAttribute`` naming the node and attribute.
public struct OperatorContext: Sendable {
    public var node: Node
    /// Opset version of the node's domain.
    public var opset: Int
    /// Known constant value of each input (nil if computed at run time or omitted).
    public var constantInputs: [Tensor?]
    /// The file's ONNX element type code of each input when known — declared for graph inputs
    /// and `value_info`, or recorded for constants whose storage hides it
    /// (``Graph/constantElementTypes``: an int8 zero point held as int64) — else nil.
    public var inputElementTypes: [Int?]

    public init(node: Node, opset: Int, constantInputs: [Tensor?] = [], inputElementTypes: [Int?] = []) {
        self.node = node
        self.opset = opset
        self.constantInputs = constantInputs
        self.inputElementTypes = inputElementTypes
    }

    public var label: String { node.label }

    /// Number of inputs actually given (trailing omitted optional inputs not counted).
    public var inputCount: Int {
        var n = node.inputs.count
        while n > 0 && node.inputs[n - 1].isEmpty { n -= 1 }
        return n
    }

    /// True if input `i` is present (not omitted).
    public func hasInput(_ i: Int) -> Bool { i < node.inputs.count && !node.inputs[i].isEmpty }

    /// Throws unless the node has between `min` and `max` inputs.
    public func expectInputs(_ min: Int, _ max: Int? = nil) throws {
        let n = inputCount
        let hi = max ?? min
        guard n >= min && n <= hi else {
            throw GraphError.arity(node: label, expected: min == hi ? "\(min) inputs" : "\(min)...\(hi) inputs", got: n)
        }
    }

    public func has(_ name: String) -> Bool { node.attributes[name] != nil }

    public func int(_ name: String, default d: Int? = nil) throws -> Int {
        switch node.attributes[name] {
        case let .int(v)?: return v
        case nil: if let d { return d }
        default: break
        }
        throw bad(name, d == nil && node.attributes[name] == nil ? "is required (int)" : "must be an int")
    }

    public func float(_ name: String, default d: Float? = nil) throws -> Float {
        switch node.attributes[name] {
        case let .float(v)?: return v
        case let .int(v)?: return Float(v)
        case nil: if let d { return d }
        default: break
        }
        throw bad(name, node.attributes[name] == nil ? "is required (float)" : "must be a float")
    }

    public func string(_ name: String, default d: String? = nil) throws -> String {
        switch node.attributes[name] {
        case let .string(v)?: return v
        case nil: if let d { return d }
        default: break
        }
        throw bad(name, node.attributes[name] == nil ? "is required (string)" : "must be a string")
    }

    public func ints(_ name: String, default d: [Int]? = nil) throws -> [Int] {
        switch node.attributes[name] {
        case let .ints(v)?: return v
        case let .int(v)?: return [v]
        case nil: if let d { return d }
        default: break
        }
        throw bad(name, node.attributes[name] == nil ? "is required (ints)" : "must be a list of ints")
    }

    public func floats(_ name: String, default d: [Float]? = nil) throws -> [Float] {
        switch node.attributes[name] {
        case let .floats(v)?: return v
        case let .float(v)?: return [v]
        case nil: if let d { return d }
        default: break
        }
        throw bad(name, node.attributes[name] == nil ? "is required (floats)" : "must be a list of floats")
    }

    public func tensor(_ name: String) throws -> Tensor? {
        switch node.attributes[name] {
        case let .tensor(t)?: return t
        case nil: return nil
        default: throw bad(name, "must be a tensor")
        }
    }

    /// An error naming this node and attribute.
    public func bad(_ attribute: String, _ expected: String) -> GraphError {
        .badAttribute(node: label, attribute: attribute, expected: expected)
    }

    /// An error for a value this operator does not (yet) handle, reported as unsupported.
    public func unsupported(_ reason: String) -> GraphError {
        .unsupportedOperators([.init(opType: node.opType, domain: node.domain, opset: opset, nodes: [node.name], reason: reason)])
    }
}

/// Builds an operator from a node at model-compile time.
public typealias OperatorFactory = @Sendable (OperatorContext) throws -> any Operator

/// The ONNX operator table: op type → factory. Opset differences (attribute → input moves such
/// as Squeeze axes at 13, Clip bounds at 11, ReduceSum axes at 13, other reductions at 18) are
/// handled inside each factory, which receives the opset.
public enum OperatorTable {
    /// Every supported default-domain operator.
    public static let operators: [String: OperatorFactory] = {
        var t: [String: OperatorFactory] = [:]
        for part in [elementwiseOperators, shapeOperators, reductionOperators, kernelOperators, controlFlowOperators] {
            t.merge(part) { a, _ in a }
        }
        return t
    }()

    /// Sorted names of supported operators.
    public static var supported: [String] { operators.keys.sorted() }

    /// Looks up a node's operator. Non-default domains are unsupported unless listed.
    public static func factory(opType: String, domain: String) -> OperatorFactory? {
        if domain == loupeDomain { return loupeOperators[opType] }
        guard domain.isEmpty || domain == "ai.onnx" else { return nil }
        return operators[opType]
    }
}
