import LoupeTensor

/// ONNX MaxPool and AveragePool (1-D and 2-D; kernel_shape, strides, pads/auto_pad, dilations,
/// ceil_mode, count_include_pad), with VJPs. MaxPool's optional Indices output is not supported
/// and is rejected at load time. 3-D windows: ``Pool3DOperator``.
struct PoolOperator: Operator {
    enum Kind: Sendable { case max, average }
    let kind: Kind
    let window: WindowAttributes
    let ceilMode: Bool
    let countIncludePad: Bool
    let label: String

    init(_ ctx: OperatorContext, kind: Kind) throws {
        try ctx.expectInputs(1)
        self.kind = kind
        label = ctx.label
        let dilationsAllowed = kind == .max ? ctx.opset >= 10 : ctx.opset >= 19
        window = try WindowAttributes(ctx, requireKernel: true, allowDilations: dilationsAllowed || !ctx.has("dilations"))
        ceilMode = try ctx.int("ceil_mode", default: 0) != 0
        countIncludePad = try ctx.int("count_include_pad", default: 0) != 0
        if kind == .max {
            if ctx.node.outputs.count > 1 && !ctx.node.outputs[1].isEmpty {
                throw ctx.unsupported("the Indices output of MaxPool is not supported")
            }
            if try ctx.int("storage_order", default: 0) != 0 { throw ctx.unsupported("storage_order = 1 is not supported") }
        }
    }

    private func prepare(_ x: Tensor) throws -> (Tensor, ConvGeometry) {
        if x.rank == 5 { throw window.volumetric }
        guard x.rank == 3 || x.rank == 4 else {
            throw GraphError.invalid("\(label): expected a rank-3 or rank-4 input, got shape \(x.shape)")
        }
        return (try kernelLiftTo2D(x, label, volumetric: window.volumetric), try window.geometry(spatial: Array(x.shape.dropFirst(2))))
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try kernelInput(inputs, 0, label)
        if kind == .max && x.dtype == .int64 {
            // Integer max pooling (uint8 images): exact through float32 for |v| < 2^24, which
            // covers every 8- and 16-bit type ONNX allows here.
            return [try forward([try x.cast(to: .float32, op: label)])[0].cast(to: .int64, op: label)]
        }
        let (x4, g) = try prepare(x)
        let y = kind == .max
            ? try Kernels.maxPool2d(x4, geometry: g, ceilMode: ceilMode)
            : try Kernels.averagePool2d(x4, geometry: g, ceilMode: ceilMode, countIncludePad: countIncludePad)
        return [try kernelLowerFrom2D(y, rank: x.rank)]
    }

    var backwardNeeds: BackwardNeeds { kind == .max ? BackwardNeeds(inputs: [0]) : .nothing }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard ctx.wantInput.first == true, let gy = ctx.gradOutputs.first ?? nil else { return [nil] }
        let gy4 = try kernelLiftTo2D(gy, label)
        switch kind {
        case .max:
            let x = try ctx.input(0, label)
            let (x4, g) = try prepare(x)
            return [try Kernels.maxPool2dBackward(gy4, input: x4, geometry: g, ceilMode: ceilMode).reshaped(x.shape)]
        case .average:
            guard let shape = ctx.inputShapes.first ?? nil, shape.count == 3 || shape.count == 4 else {
                throw GraphError.invalid("\(label) backward: input shape unknown")
            }
            let shape4 = shape.count == 3 ? [shape[0], shape[1], 1, shape[2]] : shape
            let g = try window.geometry(spatial: Array(shape.dropFirst(2)))
            return [try Kernels.averagePool2dBackward(gy4, inputShape: shape4, geometry: g, ceilMode: ceilMode,
                                                       countIncludePad: countIncludePad).reshaped(shape)]
        }
    }
}

/// ONNX GlobalAveragePool and GlobalMaxPool: (N, C, spatial...) → (N, C, 1, ...), any number
/// of spatial dims. VJPs: the mean spreads evenly; the max goes to the first maximum.
struct GlobalPoolOperator: Operator {
    let isMax: Bool
    let label: String

    init(_ ctx: OperatorContext, isMax: Bool) throws {
        try ctx.expectInputs(1)
        self.isMax = isMax
        label = ctx.label
    }

    private func planes(_ shape: [Int]) throws -> (count: Int, size: Int, out: [Int]) {
        guard shape.count >= 3 else {
            throw GraphError.invalid("\(label): expected (N, C, spatial...) input, got shape \(shape)")
        }
        let size = shape.dropFirst(2).reduce(1, *)
        guard size > 0 else { throw GraphError.invalid("\(label): empty spatial extent in \(shape)") }
        return (shape[0] * shape[1], size, [shape[0], shape[1]] + [Int](repeating: 1, count: shape.count - 2))
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try kernelInput(inputs, 0, label)
        let p = try planes(x.shape)
        if !isMax { return [try Kernels.globalAveragePool(x, op: label)] }
        let X = try x.floats(label)
        var Y = [Float](repeating: 0, count: p.count)
        X.withUnsafeBufferPointer { xb in
            for t in 0..<p.count {
                let base = t * p.size
                var m = xb[base]
                for i in 1..<p.size where xb[base + i] > m || xb[base + i].isNaN { m = xb[base + i]; if m.isNaN { break } }
                Y[t] = m
            }
        }
        return [try Tensor(shape: p.out, floats: Y)]
    }

    var backwardNeeds: BackwardNeeds { isMax ? BackwardNeeds(inputs: [0]) : .nothing }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard ctx.wantInput.first == true, let gy = ctx.gradOutputs.first ?? nil,
              let shape = ctx.inputShapes.first ?? nil else { return [nil] }
        let p = try planes(shape)
        if !isMax { return [try Kernels.globalAveragePoolBackward(gy, inputShape: shape, op: label)] }
        let G = try gy.floats(label)
        var GX = [Float](repeating: 0, count: p.count * p.size)
        let X = try ctx.input(0, label).floats(label)
        for t in 0..<p.count {
            let base = t * p.size
            var at = base
            for i in base..<(base + p.size) where X[i] > X[at] { at = i }
            GX[at] = G[t]
        }
        return [try Tensor(shape: shape, floats: GX)]
    }
}
