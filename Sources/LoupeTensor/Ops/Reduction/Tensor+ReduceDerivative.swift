import Foundation

extension Tensor {
    /// Vector-Jacobian product of ``reduce(_:axes:keepDims:name:)`` for float32 tensors.
    ///
    /// `input` is x, `output` the forward result y and `grad` its cotangent (both shaped like the
    /// forward output, with or without kept dims). Returns the cotangent of x.
    ///
    /// Max/Min send the gradient to every position equal to the extremum, split evenly among
    /// ties — the rule of `torch.amax`/`torch.amin` backward (and of ONNX exports of them); a
    /// NaN extremum sends the gradient to the NaN positions. Prod is exact with zeros: the
    /// single zero in a group gets the product of the others, and a group with two zeros passes
    /// nothing.
    public static func reduceVJP(_ op: ReduceOp, input x: Tensor, output y: Tensor, grad: Tensor, axes: [Int]?,
                                 name: String? = nil) throws -> Tensor {
        let opName = name ?? op.onnxName
        let ax = try reductionAxes(axes, rank: x.rank, op: opName)
        let kept = keptShape(x.shape, ax)
        let g = try grad.reshaped(kept).floats(opName)
        let xv = try x.floats(opName)
        let n = Float(ax.reduce(1) { $0 * x.shape[$1] })
        let plan = try BroadcastPlan(shape: x.shape, operands: [x.shape, kept, kept], op: opName)
        // For each op, the two kept-shape operands combined with x element-wise.
        var k1 = g, k2: [Float]
        switch op {
        case .sum, .mean, .l1, .sumSquare:
            k2 = g
            if op == .mean { k1 = g.map { $0 / n } }
        case .l2, .logSum, .logSumExp:
            k2 = try y.reshaped(kept).floats(opName)
        case .max, .min:
            let yv = try y.reshaped(kept).floats(opName)
            k2 = yv
            let yk = Tensor(uncheckedShape: kept, storage: .float32(yv))
            let ties = try compare(.equal, x, yk.broadcast(to: x.shape, op: opName), name: opName)
                .cast(to: .float32).reduce(.sum, axes: ax, keepDims: true, name: opName).floats()
            // A NaN extremum never compares equal; send its gradient to the NaN entries instead.
            let nanCount = try x.isNaNMask().cast(to: .float32).reduce(.sum, axes: ax, keepDims: true).floats()
            k1 = (0..<g.count).map { i in
                let c = yv[i].isNaN ? nanCount[i] : ties[i]
                return c > 0 ? g[i] / c : 0
            }
        case .prod:
            // k1 = g · (product of the non-zero entries), k2 = number of zeros in the group.
            let nz = x.unaryZeroAsOne()
            let pnz = try nz.reduce(.prod, axes: ax, keepDims: true).floats()
            k1 = (0..<g.count).map { g[$0] * pnz[$0] }
            k2 = try compare(.equal, x, Tensor(scalar: 0)).cast(to: .float32)
                .reduce(.sum, axes: ax, keepDims: true).floats()
        }
        let out: [Float] = xv.withUnsafeBufferPointer { a in
            k1.withUnsafeBufferPointer { b in
                k2.withUnsafeBufferPointer { c in
                    arrayFilledBy(count: plan.count) { (o: UnsafeMutableBufferPointer<Float>) in
                        switch op {
                        case .sum, .mean: broadcastLoop3(plan, a, b, c, o) { _, g, _ in g }
                        case .l1: broadcastLoop3(plan, a, b, c, o) { x, g, _ in x > 0 ? g : (x < 0 ? -g : 0) }
                        case .sumSquare: broadcastLoop3(plan, a, b, c, o) { x, g, _ in 2 * x * g }
                        case .l2: broadcastLoop3(plan, a, b, c, o) { x, g, y in y > 0 ? g * x / y : 0 }
                        case .logSum: broadcastLoop3(plan, a, b, c, o) { _, g, y in g / Foundation.exp(y) }
                        case .logSumExp: broadcastLoop3(plan, a, b, c, o) { x, g, y in g * Foundation.exp(x - y) }
                        case .max, .min:
                            broadcastLoop3(plan, a, b, c, o) { x, gs, y in (x == y || (x.isNaN && y.isNaN)) ? gs : 0 }
                        case .prod:
                            broadcastLoop3(plan, a, b, c, o) { x, gp, zeros in
                                x != 0 ? (zeros == 0 ? gp / x : 0) : (zeros == 1 ? gp : 0)
                            }
                        }
                    }
                }
            }
        }
        return Tensor(uncheckedShape: x.shape, storage: .float32(out))
    }

    /// Float tensor with zeros replaced by ones (Prod backward).
    func unaryZeroAsOne() -> Tensor {
        guard case let .float32(a) = storage else { return self }
        return Tensor(uncheckedShape: shape, storage: .float32(a.map { $0 == 0 ? 1 : $0 }))
    }
}
