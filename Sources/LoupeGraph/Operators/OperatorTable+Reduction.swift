import LoupeTensor

extension OperatorTable {
    /// Reductions, arg-reductions, scans, TopK and Einsum.
    static let reductionOperators: [String: OperatorFactory] = [
        "ReduceSum": { try ReduceOperator(.sum, $0) },
        "ReduceMean": { try ReduceOperator(.mean, $0) },
        "ReduceMax": { try ReduceOperator(.max, $0) },
        "ReduceMin": { try ReduceOperator(.min, $0) },
        "ReduceProd": { try ReduceOperator(.prod, $0) },
        "ReduceL1": { try ReduceOperator(.l1, $0) },
        "ReduceL2": { try ReduceOperator(.l2, $0) },
        "ReduceSumSquare": { try ReduceOperator(.sumSquare, $0) },
        "ReduceLogSum": { try ReduceOperator(.logSum, $0) },
        "ReduceLogSumExp": { try ReduceOperator(.logSumExp, $0) },
        "ArgMax": { try ArgExtremumOperator(largest: true, $0) },
        "ArgMin": { try ArgExtremumOperator(largest: false, $0) },
        "CumSum": { try CumSumOperator($0) },
        "TopK": { try TopKOperator($0) },
        "Einsum": { try EinsumOperator($0) },
    ]
}
