#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LoupeTensor

/// Shape folding for models whose inputs have symbolic dimensions (a dynamic batch).
///
/// Exporters write the shape arithmetic of every reshape out as nodes (Shape → Gather →
/// Unsqueeze → Concat → Reshape): ViT-tiny runs about 900 of them per forward, each a few
/// microseconds of dispatch for a handful of integers. With static declared input shapes
/// ``Model/init(graph:customOperators:)`` folds them at load. With a symbolic batch it cannot,
/// but the values of the foldable Shape nodes (``ShapeStaticity``: those fixed by the input
/// shapes alone) are the same on every call with the same input shapes. So the first call
/// with a given set of input shapes runs the model as compiled and records them, and later
/// calls with those shapes run a specialisation of the model with those nodes and everything
/// computed only from them folded into constants. The specialisation shares the operators
/// (and their packed weights) and the value slots of the model it came from, so hooks and
/// value names carry over unchanged.
final class ShapeSpecialisation: @unchecked Sendable {
    /// Slots of the Shape/Size outputs fixed by the input shapes.
    let slots: Set<Int>
    /// Specialisations by the input shapes (in `inputSlots` order); guarded by `lock`.
    private var models: [[[Int]]: Model] = [:]
    private var lock = pthread_mutex_t()
    /// Input-shape signatures kept at once; past this the cache starts over (a caller cycling
    /// through many shapes pays one unspecialised call per new shape, never unbounded memory).
    static let capacity = 8

    init(slots: Set<Int>) {
        self.slots = slots
        pthread_mutex_init(&lock, nil)
    }

    deinit { pthread_mutex_destroy(&lock) }

    func model(for key: [[Int]]) -> Model? {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return models[key]
    }

    func store(_ model: Model, for key: [[Int]]) {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if models[key] != nil { return }
        if models.count >= Self.capacity { models.removeAll() }
        models[key] = model
    }
}

/// Values of the watched Shape/Size outputs seen during one forward pass.
final class ShapeLog {
    let slots: Set<Int>
    var values: [Int: Tensor] = [:]
    init(slots: Set<Int>) { self.slots = slots }
}

extension Model {
    /// The model to run `feeds` on: a shape specialisation when one has been made for these
    /// input shapes, else nil (run this model).
    func specialisation(for feeds: [String: Tensor]) -> (model: Model?, key: [[Int]])? {
        guard let spec = shapeSpecialisation else { return nil }
        var key: [[Int]] = []
        key.reserveCapacity(inputSlots.count)
        for (info, _) in inputSlots {
            guard let t = feeds[info.name] else { return nil } // bindInputs reports it
            key.append(t.shape)
        }
        return (spec.model(for: key), key)
    }

    /// Makes and keeps the specialisation for the input shapes `key` from the Shape values a
    /// pass on this model recorded; nothing when the pass did not run every watched node.
    func specialise(for key: [[Int]], from log: ShapeLog) {
        guard let spec = shapeSpecialisation, log.values.count == spec.slots.count,
              let parts = try? Model.folding(self.parts, pinned: log.values) else { return }
        spec.store(Model(graph: graph, parts: parts, foldableShapes: []), for: key)
    }

    /// This model's compiled form.
    var parts: Parts {
        var p = Parts()
        p.names = valueNames
        p.slotOf = slotOf
        p.constants = constants
        p.steps = steps
        p.inputSlots = inputSlots
        p.outputSlots = outputSlots
        p.producer = producer
        p.lastUse = lastUse
        p.folded = foldedNodes
        return p
    }

    /// `p` with the `pinned` slots made constants and every step whose inputs are then all
    /// constant folded away; the remaining steps keep their operators.
    static func folding(_ p: Parts, pinned: [Int: Tensor]) throws -> Parts {
        var q = p
        q.steps = []
        for st in p.steps {
            if st.outputs.count == 1, let v = pinned[st.outputs[0]] {
                q.constants[st.outputs[0]] = v
                q.folded.append(st.node.displayName)
                continue
            }
            if try foldIfConstant(node: st.node, op: st.op, inSlots: st.inputs, outSlots: st.outputs, into: &q) { continue }
            q.steps.append(st)
        }
        linkSlots(&q)
        return q
    }

    /// Runs a node whose every present input is a constant of `p` once and records its outputs
    /// as constants (true), or leaves it to run per call (false).
    static func foldIfConstant(node: Node, op: any Operator, inSlots: [Int], outSlots: [Int], into p: inout Parts) throws -> Bool {
        guard !neverFold.contains(node.opType),
              inSlots.allSatisfy({ $0 < 0 || ($0 < p.constants.count && p.constants[$0] != nil) }) else { return false }
        let outs: [Tensor]
        do {
            outs = try op.forward(inSlots.map { $0 >= 0 ? p.constants[$0] : nil })
        } catch {
            throw GraphError.nodeFailed(node: node.displayName, opType: node.opType, underlying: "\(error)")
        }
        for (s, t) in zip(outSlots, outs) where s >= 0 {
            while p.constants.count <= s { p.constants.append(nil) }
            p.constants[s] = t
        }
        p.folded.append(node.displayName)
        return true
    }

    /// Producer and last reader of every slot; graph outputs never die.
    static func linkSlots(_ p: inout Parts) {
        p.producer = [Int](repeating: -1, count: p.names.count)
        p.lastUse = [Int](repeating: -1, count: p.names.count)
        for (i, st) in p.steps.enumerated() {
            for s in st.outputs where s >= 0 { p.producer[s] = i }
            for s in st.inputs where s >= 0 { p.lastUse[s] = i }
        }
        for s in p.outputSlots { p.lastUse[s] = Int.max }
    }
}
