/// Element-wise comparisons producing bool tensors (ONNX Equal, Less, LessOrEqual, Greater,
/// GreaterOrEqual).
public enum CompareOp: String, Sendable, Hashable, CaseIterable {
    case equal, less, lessOrEqual, greater, greaterOrEqual

    public var onnxName: String {
        switch self {
        case .equal: return "Equal"
        case .less: return "Less"
        case .lessOrEqual: return "LessOrEqual"
        case .greater: return "Greater"
        case .greaterOrEqual: return "GreaterOrEqual"
        }
    }
}

/// Element-wise boolean logic (ONNX And, Or, Xor).
public enum LogicOp: String, Sendable, Hashable, CaseIterable {
    case and, or, xor

    public var onnxName: String {
        switch self {
        case .and: return "And"
        case .or: return "Or"
        case .xor: return "Xor"
        }
    }
}

extension Tensor {
    /// `a op b` with broadcasting, as a bool tensor. Operands must share an element type;
    /// bool operands support only `equal`. Comparisons with NaN are false (IEEE).
    public static func compare(_ op: CompareOp, _ a: Tensor, _ b: Tensor, name: String? = nil) throws -> Tensor {
        let opName = name ?? op.onnxName
        let shape = try Shape.broadcast(a.shape, b.shape, op: opName)
        let plan = try BroadcastPlan(shape: shape, operands: [a.shape, b.shape], op: opName)
        let out: [Bool]
        switch (a.storage, b.storage) {
        case let (.float32(x), .float32(y)): out = compareLoop(op, plan, x, y)
        case let (.int64(x), .int64(y)): out = compareLoop(op, plan, x, y)
        case let (.bool(x), .bool(y)) where op == .equal:
            out = x.withUnsafeBufferPointer { pa in
                y.withUnsafeBufferPointer { pb in
                    arrayFilledBy(count: plan.count) { (o: UnsafeMutableBufferPointer<Bool>) in broadcastLoop2(plan, pa, pb, o) { $0 == $1 } }
                }
            }
        default:
            throw TensorError.dtypeMismatch(op: opName, expected: "numeric operands of the same type (bool only for Equal), first is \(a.dtype)", got: b.dtype)
        }
        return Tensor(uncheckedShape: shape, storage: .bool(out))
    }

    static func compareLoop<T: Comparable>(_ op: CompareOp, _ plan: BroadcastPlan, _ x: [T], _ y: [T]) -> [Bool] {
        x.withUnsafeBufferPointer { a in
            y.withUnsafeBufferPointer { b in
                arrayFilledBy(count: plan.count) { (o: UnsafeMutableBufferPointer<Bool>) in
                    switch op {
                    case .equal: broadcastLoop2(plan, a, b, o) { $0 == $1 }
                    case .less: broadcastLoop2(plan, a, b, o) { $0 < $1 }
                    case .lessOrEqual: broadcastLoop2(plan, a, b, o) { $0 <= $1 }
                    case .greater: broadcastLoop2(plan, a, b, o) { $0 > $1 }
                    case .greaterOrEqual: broadcastLoop2(plan, a, b, o) { $0 >= $1 }
                    }
                }
            }
        }
    }

    /// Boolean `a op b` with broadcasting; both operands must be bool.
    public static func logic(_ op: LogicOp, _ a: Tensor, _ b: Tensor, name: String? = nil) throws -> Tensor {
        let opName = name ?? op.onnxName
        guard case let .bool(x) = a.storage else { throw TensorError.dtypeMismatch(op: opName, expected: "bool", got: a.dtype) }
        guard case let .bool(y) = b.storage else { throw TensorError.dtypeMismatch(op: opName, expected: "bool", got: b.dtype) }
        let shape = try Shape.broadcast(a.shape, b.shape, op: opName)
        let plan = try BroadcastPlan(shape: shape, operands: [a.shape, b.shape], op: opName)
        let out = x.withUnsafeBufferPointer { pa in
            y.withUnsafeBufferPointer { pb in
                arrayFilledBy(count: plan.count) { (o: UnsafeMutableBufferPointer<Bool>) in
                    switch op {
                    case .and: broadcastLoop2(plan, pa, pb, o) { $0 && $1 }
                    case .or: broadcastLoop2(plan, pa, pb, o) { $0 || $1 }
                    case .xor: broadcastLoop2(plan, pa, pb, o) { $0 != $1 }
                    }
                }
            }
        }
        return Tensor(uncheckedShape: shape, storage: .bool(out))
    }

    /// Boolean negation (ONNX Not).
    public func logicalNot(op: String = "Not") throws -> Tensor {
        guard case let .bool(x) = storage else { throw TensorError.dtypeMismatch(op: op, expected: "bool", got: dtype) }
        return Tensor(uncheckedShape: shape, storage: .bool(x.map { !$0 }))
    }

    /// ONNX IsNaN: true where the element is NaN (integer inputs: all false).
    public func isNaNMask(op: String = "IsNaN") throws -> Tensor {
        switch storage {
        case let .float32(x): return Tensor(uncheckedShape: shape, storage: .bool(x.map { $0.isNaN }))
        case .int64: return Tensor(uncheckedShape: shape, storage: .bool([Bool](repeating: false, count: count)))
        case .bool: throw TensorError.dtypeMismatch(op: op, expected: "float32 or int64", got: dtype)
        }
    }

    /// ONNX IsInf: true where the element is +∞ (if `positive`) or −∞ (if `negative`).
    public func isInfMask(positive: Bool = true, negative: Bool = true, op: String = "IsInf") throws -> Tensor {
        switch storage {
        case let .float32(x):
            let out = x.map { v in v.isInfinite && ((v > 0 && positive) || (v < 0 && negative)) }
            return Tensor(uncheckedShape: shape, storage: .bool(out))
        case .int64: return Tensor(uncheckedShape: shape, storage: .bool([Bool](repeating: false, count: count)))
        case .bool: throw TensorError.dtypeMismatch(op: op, expected: "float32 or int64", got: dtype)
        }
    }

    /// ONNX Where: `condition ? x : y` with three-way broadcasting. `x` and `y` share a type.
    public static func select(_ condition: Tensor, _ x: Tensor, _ y: Tensor, name: String = "Where") throws -> Tensor {
        guard case let .bool(c) = condition.storage else {
            throw TensorError.dtypeMismatch(op: name, expected: "bool condition", got: condition.dtype)
        }
        let shape = try Shape.broadcast([condition.shape, x.shape, y.shape], op: name)
        let plan = try BroadcastPlan(shape: shape, operands: [condition.shape, x.shape, y.shape], op: name)
        switch (x.storage, y.storage) {
        case let (.float32(a), .float32(b)): return Tensor(uncheckedShape: shape, storage: .float32(selectLoop(plan, c, a, b)))
        case let (.int64(a), .int64(b)): return Tensor(uncheckedShape: shape, storage: .int64(selectLoop(plan, c, a, b)))
        case let (.bool(a), .bool(b)): return Tensor(uncheckedShape: shape, storage: .bool(selectLoop(plan, c, a, b)))
        default:
            throw TensorError.dtypeMismatch(op: name, expected: "X and Y of the same type, X is \(x.dtype)", got: y.dtype)
        }
    }

    static func selectLoop<T>(_ plan: BroadcastPlan, _ c: [Bool], _ x: [T], _ y: [T]) -> [T] {
        c.withUnsafeBufferPointer { pc in
            x.withUnsafeBufferPointer { px in
                y.withUnsafeBufferPointer { py in
                    arrayFilledBy(count: plan.count) { (o: UnsafeMutableBufferPointer<T>) in
                        broadcastLoop3(plan, pc, px, py, o) { $0 ? $1 : $2 }
                    }
                }
            }
        }
    }
}
