import LoupeTensor

/// How one node passes cotangents (or relevance) from its outputs to its inputs during the
/// reverse walk. The exact VJP (``GradientRule``) is the default; guided backprop, DeconvNet and
/// the LRP rules are other values of this protocol, mapped onto nodes by a ``RuleMap`` — one
/// backward mechanism, swappable rules (Zennit's composites).
public protocol BackwardRule: Sendable {
    /// Inputs/outputs this rule reads beyond what the operator's own VJP needs.
    func extraNeeds(for node: Node) -> BackwardNeeds
    /// Input cotangents for one node.
    func backward(node: Node, op: any Operator, context: VJPContext) throws -> [Tensor?]
}

extension BackwardRule {
    public func extraNeeds(for node: Node) -> BackwardNeeds { .nothing }
}

/// The exact vector-Jacobian product of each operator.
public struct GradientRule: BackwardRule {
    public init() {}
    public func backward(node: Node, op: any Operator, context: VJPContext) throws -> [Tensor?] {
        try op.vjp(context)
    }
}

/// Assigns a ``BackwardRule`` to each node: the first matching entry wins, else `fallback`.
/// A value, used for one backward call (it is never installed on the model).
public struct RuleMap: Sendable {
    public struct Entry: Sendable {
        public var matches: @Sendable (Node) -> Bool
        public var rule: any BackwardRule
        public init(matches: @escaping @Sendable (Node) -> Bool, rule: any BackwardRule) {
            self.matches = matches
            self.rule = rule
        }
    }

    public var entries: [Entry]
    public var fallback: any BackwardRule

    public init(_ entries: [Entry] = [], fallback: any BackwardRule = GradientRule()) {
        self.entries = entries
        self.fallback = fallback
    }

    /// Plain gradients everywhere.
    public static let gradient = RuleMap()

    /// Rule for a given node.
    public func rule(for node: Node) -> any BackwardRule {
        entries.first { $0.matches(node) }?.rule ?? fallback
    }

    /// Map op types to rules, e.g. `["Relu": GuidedReluRule()]`.
    public static func byOpType(_ table: [String: any BackwardRule], fallback: any BackwardRule = GradientRule()) -> RuleMap {
        RuleMap(table.map { kv in Entry(matches: { $0.opType == kv.key }, rule: kv.value) }, fallback: fallback)
    }
}
