extension OperatorTable {
    static let reductionOperators: [String: OperatorFactory] = [:]
}
