extension OperatorTable {
    /// A 3-D window (kernel_shape of three) pools frame by frame; 1-D and 2-D in the 2-D kernels.
    private static func pool(_ ctx: OperatorContext, _ kind: PoolOperator.Kind) throws -> any Operator {
        if (try? ctx.ints("kernel_shape"))?.count == 3 { return try Pool3DOperator(ctx, kind: kind) }
        return try PoolOperator(ctx, kind: kind)
    }

    /// Operators built on the numeric kernels (GEMM, convolution, pooling, normalisation, resize).
    static let kernelOperators: [String: OperatorFactory] = [
        "MatMulInteger": { try MatMulIntegerOperator($0) },
        "ConvInteger": { try ConvIntegerOperator($0) },
        "QLinearMatMul": { try QLinearMatMulOperator($0) },
        "QLinearConv": { try QLinearConvOperator($0) },
        "DynamicQuantizeLinear": { try DynamicQuantizeLinearOperator($0) },
        "Conv": { ctx in
            // Three spatial dims (from kernel_shape or a constant weight): the frame-wise operator.
            let w = ctx.constantInputs.count > 1 ? ctx.constantInputs[1] : nil
            if (try? ctx.ints("kernel_shape"))?.count == 3 || w?.rank == 5 { return try Conv3DOperator(ctx) }
            return try ConvOperator(ctx)
        },
        "ConvTranspose": { try ConvTransposeOperator($0) },
        "MaxPool": { try pool($0, .max) },
        "AveragePool": { try pool($0, .average) },
        "GlobalMaxPool": { try GlobalPoolOperator($0, isMax: true) },
        "GlobalAveragePool": { try GlobalPoolOperator($0, isMax: false) },
        "BatchNormalization": { try BatchNormalizationOperator($0) },
        "LayerNormalization": { try LayerNormalizationOperator($0) },
        "InstanceNormalization": { try InstanceNormalizationOperator($0) },
        "Softmax": { try SoftmaxOperator($0, log: false) },
        "LogSoftmax": { try SoftmaxOperator($0, log: true) },
        "MatMul": { try MatMulOperator($0) },
        "Gemm": { try GemmOperator($0) },
        "Resize": { try ResizeOperator($0, legacyUpsample: false) },
        "Upsample": { try ResizeOperator($0, legacyUpsample: true) },
        "RNN": { try RecurrentOperator($0, cell: .rnn) },
        "GRU": { try RecurrentOperator($0, cell: .gru(linearBeforeReset: try $0.int("linear_before_reset", default: 0) != 0)) },
        "LSTM": { try RecurrentOperator($0, cell: .lstm(inputForget: try $0.int("input_forget", default: 0) != 0)) },
    ]
}
