extension Tensor {
    /// This tensor broadcast to `shape` (NumPy/ONNX rules, right-aligned), materialised.
    ///
    /// `shape` must be exactly the broadcast result; for ONNX `Expand`, whose target may be
    /// smaller than the input along some dimensions, use ``expanded(to:op:)``.
    /// Throws ``TensorError/shapeMismatch(op:expected:got:)`` naming `op` otherwise.
    public func broadcast(to shape: [Int], op: String = "broadcast") throws -> Tensor {
        if shape == self.shape { return self }
        let plan = try BroadcastPlan(shape: shape, operands: [self.shape], op: op)
        switch storage {
        case let .float32(a): return Tensor(uncheckedShape: shape, storage: .float32(Tensor.materialize(plan, a)))
        case let .int64(a): return Tensor(uncheckedShape: shape, storage: .int64(Tensor.materialize(plan, a)))
        case let .bool(a): return Tensor(uncheckedShape: shape, storage: .bool(Tensor.materialize(plan, a)))
        }
    }

    /// ONNX `Expand`: broadcasts this tensor together with `shape`, so the result's shape is
    /// `broadcast(self.shape, shape)` (a 1 in `shape` keeps the input's dimension).
    public func expanded(to shape: [Int], op: String = "Expand") throws -> Tensor {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw TensorError.invalidArgument(op: op, message: "negative dimension in target shape \(shape)")
        }
        let out = try Shape.broadcast(self.shape, shape, op: op)
        return try broadcast(to: out, op: op)
    }

    @usableFromInline
    static func materialize<T>(_ plan: BroadcastPlan, _ a: [T]) -> [T] {
        a.withUnsafeBufferPointer { pa in
            arrayFilledBy(count: plan.count) { (o: UnsafeMutableBufferPointer<T>) in broadcastLoop1(plan, pa, o) { $0 } }
        }
    }
}
