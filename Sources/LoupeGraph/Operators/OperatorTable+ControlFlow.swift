extension OperatorTable {
    /// Control flow: `If` (branches compiled as models; see ``IfOperator``).
    static let controlFlowOperators: [String: OperatorFactory] = [
        "If": { try IfOperator($0) },
    ]
}
