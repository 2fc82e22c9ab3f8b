import LoupeTensor

/// The name of a value in a compiled model that a hook can attach to. Creating one through
/// ``Model/hook(_:)`` checks the name exists (and suggests close names if it does not), so a
/// typo fails before the run, not silently.
public struct HookName: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    let slot: Int
    public var description: String { name }
}

extension Model {
    /// A checked hook name for value `name`.
    public func hook(_ name: String) throws -> HookName {
        HookName(name: name, slot: try slot(named: name))
    }
}

/// Side effects attached to named values for ONE forward call. Hooks are plain values passed to
/// ``Model/forward(_:hooks:recording:)``; nothing is installed on the model, so nothing can be
/// left behind after the call, even when it throws.
///
/// - `capture`: keep the value and return it in ``ForwardPass/captured``.
/// - `replace`: substitute a tensor of the same shape (activation patching). Gradient does not
///   flow to what produced the original value.
/// - `add`: add a tensor (broadcast to the value's shape) — steering vectors, noise. Gradient
///   passes through unchanged.
/// - `transform`: any function; treated like `replace` for gradients.
public struct Hooks: Sendable {
    public enum Edit: Sendable {
        case replace(Tensor)
        case add(Tensor)
        case transform(@Sendable (Tensor) throws -> Tensor)
    }

    var captures: Set<Int> = []
    var edits: [Int: [Edit]] = [:]
    var names: [Int: String] = [:]

    public init() {}

    public static let none = Hooks()

    public mutating func capture(_ h: HookName) { captures.insert(h.slot); names[h.slot] = h.name }
    public mutating func replace(_ h: HookName, with t: Tensor) { edits[h.slot, default: []].append(.replace(t)); names[h.slot] = h.name }
    public mutating func add(_ h: HookName, _ t: Tensor) { edits[h.slot, default: []].append(.add(t)); names[h.slot] = h.name }
    public mutating func transform(_ h: HookName, _ f: @escaping @Sendable (Tensor) throws -> Tensor) {
        edits[h.slot, default: []].append(.transform(f))
        names[h.slot] = h.name
    }

    var isEmpty: Bool { captures.isEmpty && edits.isEmpty }

    /// Applies the edits for `slot` to `value`. Returns the new value and whether the gradient
    /// path to the original producer is cut.
    func apply(slot: Int, to value: Tensor) throws -> (Tensor, cut: Bool) {
        guard let list = edits[slot] else { return (value, false) }
        var v = value
        var cut = false
        let name = names[slot] ?? "?"
        for e in list {
            switch e {
            case let .replace(t):
                guard t.shape == v.shape, t.dtype == v.dtype else {
                    throw GraphError.inputMismatch(name: name, expected: "replacement of shape \(v.shape) \(v.dtype)",
                                                   got: "shape \(t.shape) \(t.dtype)")
                }
                v = t
                cut = true
            case let .add(t):
                v = try HookArithmetic.add(v, t, name: name)
            case let .transform(f):
                let t = try f(v)
                guard t.shape == v.shape, t.dtype == v.dtype else {
                    throw GraphError.inputMismatch(name: name, expected: "hook result of shape \(v.shape) \(v.dtype)",
                                                   got: "shape \(t.shape) \(t.dtype)")
                }
                v = t
                cut = true
            }
        }
        return (v, cut)
    }
}

/// Broadcast addition for `add` hooks, kept local so the executor does not depend on the
/// operator table.
enum HookArithmetic {
    static func add(_ a: Tensor, _ b: Tensor, name: String) throws -> Tensor {
        let out = try Shape.broadcast(a.shape, b.shape, op: "add hook on \(name)")
        guard out == a.shape else {
            throw GraphError.inputMismatch(name: name, expected: "addend broadcastable to \(a.shape)", got: "shape \(b.shape)")
        }
        let x = try a.floats("add hook"), y = try b.floats("add hook")
        let r = a.rank
        let bs = Array(repeating: 1, count: r - b.rank) + b.shape
        let bStr = Shape.strides(bs).enumerated().map { bs[$0.offset] == 1 ? 0 : $0.element }
        let aStr = Shape.strides(a.shape)
        var res = x
        for i in 0..<res.count {
            var rem = i, off = 0
            for d in 0..<r { let q = rem / aStr[d]; rem -= q * aStr[d]; off += q * bStr[d] }
            res[i] += y[off]
        }
        return try Tensor(shape: a.shape, floats: res)
    }
}
