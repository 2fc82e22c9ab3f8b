extension OperatorTable {
    static let kernelOperators: [String: OperatorFactory] = [:]
}
