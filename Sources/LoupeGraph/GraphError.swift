import LoupeTensor

/// Errors from compiling or executing a graph. Every case names the node, value or operator
/// involved and what was expected.
public enum GraphError: Error, Sendable, CustomStringConvertible {
    /// Operators Loupe has no implementation for, listed all at once (op, domain, opset, nodes).
    case unsupportedOperators([UnsupportedOperator])
    /// A node's attribute is missing or has the wrong type/value.
    case badAttribute(node: String, attribute: String, expected: String)
    /// A node has the wrong number of inputs or outputs.
    case arity(node: String, expected: String, got: Int)
    /// A value is consumed but produced by nothing (not an input, initializer or node output).
    case undefinedValue(name: String, consumer: String)
    /// The nodes contain a cycle through these values.
    case cycle(values: [String])
    /// A required graph input was not fed.
    case missingInput(name: String, expected: String)
    /// A fed input does not match the declared type or shape.
    case inputMismatch(name: String, expected: String, got: String)
    /// A fed input contains NaN or infinity.
    case nonFiniteInput(name: String)
    /// A node failed while running; `underlying` says why.
    case nodeFailed(node: String, opType: String, underlying: String)
    /// Backward needs a gradient through a node that has none (integer op, argmax, ...).
    case notDifferentiable(node: String, opType: String, reason: String)
    /// A hook or gradient request names a value the graph does not have.
    case unknownValue(name: String, suggestions: [String])
    /// Anything else, with context.
    case invalid(String)

    public struct UnsupportedOperator: Sendable, Equatable, CustomStringConvertible {
        public var opType: String
        public var domain: String
        public var opset: Int
        public var nodes: [String]
        public var reason: String
        public var description: String {
            let d = domain.isEmpty ? "ai.onnx" : domain
            let where_ = nodes.prefix(3).joined(separator: ", ") + (nodes.count > 3 ? ", … (\(nodes.count) nodes)" : "")
            return "\(opType) (\(d) opset \(opset)) at \(where_)" + (reason.isEmpty ? "" : ": \(reason)")
        }
    }

    public var description: String {
        switch self {
        case let .unsupportedOperators(list):
            return "unsupported operator\(list.count == 1 ? "" : "s"): " + list.map(\.description).joined(separator: "; ")
        case let .badAttribute(node, attribute, expected):
            return "node \(node): attribute '\(attribute)' \(expected)"
        case let .arity(node, expected, got):
            return "node \(node): expected \(expected), got \(got)"
        case let .undefinedValue(name, consumer):
            return "value '\(name)' used by \(consumer) is not produced by any node, input or initializer"
        case let .cycle(values):
            return "graph has a cycle through \(values.prefix(5).joined(separator: ", "))"
        case let .missingInput(name, expected):
            return "input '\(name)' was not given (expected \(expected))"
        case let .inputMismatch(name, expected, got):
            return "input '\(name)': expected \(expected), got \(got)"
        case let .nonFiniteInput(name):
            return "input '\(name)' contains NaN or infinity"
        case let .nodeFailed(node, opType, underlying):
            return "node \(node) (\(opType)) failed: \(underlying)"
        case let .notDifferentiable(node, opType, reason):
            return "cannot differentiate through node \(node) (\(opType)): \(reason)"
        case let .unknownValue(name, suggestions):
            return "no value named '\(name)' in the graph"
                + (suggestions.isEmpty ? "" : "; did you mean \(suggestions.map { "'\($0)'" }.joined(separator: ", "))?")
        case let .invalid(s):
            return s
        }
    }
}
