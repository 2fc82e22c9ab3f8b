extension OperatorTable {
    static let elementwiseOperators: [String: OperatorFactory] = [:]
}
