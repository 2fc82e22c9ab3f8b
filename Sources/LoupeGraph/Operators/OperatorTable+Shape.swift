extension OperatorTable {
    static let shapeOperators: [String: OperatorFactory] = [:]
}
