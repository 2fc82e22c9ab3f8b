/// A parsed Einstein-summation equation (ONNX Einsum, `numpy.einsum` notation) for operands of
/// known ranks.
///
/// Letters are labels (case-sensitive); `...` stands for the leading dimensions not named by
/// letters, right-aligned and broadcast across operands. Without `->`, the output is the
/// ellipsis dimensions followed by the letters that occur exactly once, in alphabetical order.
/// Labels are integers here: letters 0..<52, ellipsis dimensions from 100 on.
public struct EinsumEquation: Sendable, Equatable {
    /// Labels of each operand's axes, in order (a label may repeat: a diagonal).
    public let inputs: [[Int]]
    /// Labels of the output's axes (distinct).
    public let output: [Int]

    public init(inputs: [[Int]], output: [Int]) {
        self.inputs = inputs
        self.output = output
    }

    /// Parses `equation` for operands of the given ranks; throws naming `op` on malformed text,
    /// a term whose letter count does not match its operand's rank, or an output label that no
    /// input has.
    public init(_ equation: String, ranks: [Int], op: String) throws {
        func fail(_ why: String) -> TensorError { .invalidArgument(op: op, message: "equation '\(equation)': \(why)") }
        let text = equation.filter { !$0.isWhitespace }
        let sides = text.components(separatedBy: "->")
        guard sides.count <= 2 else { throw fail("more than one '->'") }
        let terms = sides[0].components(separatedBy: ",")
        guard terms.count == ranks.count else { throw fail("\(terms.count) terms for \(ranks.count) inputs") }

        func letterLabel(_ c: Character) throws -> Int {
            guard let a = c.asciiValue else { throw fail("bad label '\(c)'") }
            switch a {
            case 97...122: return Int(a - 97)
            case 65...90: return Int(a - 65) + 26
            default: throw fail("bad label '\(c)'")
            }
        }
        // Splits a term into (letters before "...", has ellipsis, letters after).
        func split(_ term: String) throws -> ([Int], Bool, [Int]) {
            let parts = term.components(separatedBy: "...")
            guard parts.count <= 2 else { throw fail("more than one '...' in '\(term)'") }
            let head = try parts[0].map(letterLabel)
            let tail = parts.count == 2 ? try parts[1].map(letterLabel) : []
            return (head, parts.count == 2, tail)
        }

        var parsed: [([Int], Bool, [Int])] = []
        var ellipsisRank = 0
        for (term, rank) in zip(terms, ranks) {
            let p = try split(term)
            let named = p.0.count + p.2.count
            if p.1 {
                guard rank >= named else { throw fail("term '\(term)' names \(named) axes, operand has rank \(rank)") }
                ellipsisRank = Swift.max(ellipsisRank, rank - named)
            } else {
                guard rank == named else { throw fail("term '\(term)' names \(named) axes, operand has rank \(rank)") }
            }
            parsed.append(p)
        }
        let ellipsisLabels = (0..<ellipsisRank).map { 100 + $0 }
        var inputs: [[Int]] = []
        for (p, rank) in zip(parsed, ranks) {
            let e = p.1 ? rank - p.0.count - p.2.count : 0
            inputs.append(p.0 + ellipsisLabels.suffix(e) + p.2)
        }
        let output: [Int]
        if sides.count == 2 {
            let p = try split(sides[1])
            output = p.0 + (p.1 ? ellipsisLabels : []) + p.2
            guard Set(output).count == output.count else { throw fail("output repeats a label") }
            let known = Set(inputs.joined())
            for l in output where !known.contains(l) { throw fail("output label not in any input") }
        } else {
            var counts: [Int: Int] = [:]
            for l in inputs.joined() where l < 100 { counts[l, default: 0] += 1 }
            output = ellipsisLabels + counts.filter { $0.value == 1 }.keys.sorted()
        }
        self.init(inputs: inputs, output: output)
    }
}

extension Tensor {
    /// ONNX Einsum on float32 operands: contracts `operands` as `equation` says.
    ///
    /// Operands are contracted pairwise from left to right; each pair becomes a batched matrix
    /// product after permuting to `[batch, free, contracted]`, and labels no later operand or
    /// the output needs are summed out as early as possible.
    public static func einsum(_ equation: String, _ operands: [Tensor], name: String = "Einsum") throws -> Tensor {
        let eq = try EinsumEquation(equation, ranks: operands.map(\.rank), op: name)
        return try einsum(eq, operands, name: name)
    }

    /// Einsum with a parsed equation.
    public static func einsum(_ eq: EinsumEquation, _ operands: [Tensor], name: String = "Einsum") throws -> Tensor {
        guard !operands.isEmpty, operands.count == eq.inputs.count else {
            throw TensorError.invalidArgument(op: name, message: "expected \(eq.inputs.count) operands, got \(operands.count)")
        }
        let sizes = try einsumLabelSizes(eq.inputs, operands.map(\.shape), name)
        var terms: [LabeledTensor] = []
        for (t, labels) in zip(operands, eq.inputs) {
            guard t.dtype == .float32 else { throw TensorError.dtypeMismatch(op: name, expected: "float32", got: t.dtype) }
            terms.append(try LabeledTensor(t, labels).diagonal().broadcastLabels(sizes, name))
        }
        var current = terms[0]
        for j in 1..<max(terms.count, 1) {
            var keep = Set(eq.output)
            for later in terms[(j + 1)...] { keep.formUnion(later.labels) }
            current = try current.contract(with: terms[j], keep: keep, name)
        }
        return try current.sumOut(keeping: Set(eq.output)).permuted(to: eq.output).tensor
    }

    /// Cotangent of operand `index` of ``einsum(_:_:name:)`` given the output cotangent `grad`:
    /// the einsum of `grad` with the other operands, broadcast over labels only this operand
    /// had, summed back over its broadcast size-1 axes, and written back onto the diagonal for
    /// repeated labels.
    public static func einsumVJP(_ eq: EinsumEquation, _ operands: [Tensor], grad: Tensor, index: Int,
                                 name: String = "Einsum") throws -> Tensor {
        let sizes = try einsumLabelSizes(eq.inputs, operands.map(\.shape), name)
        let target = eq.inputs[index]
        var unique: [Int] = []
        for l in target where !unique.contains(l) { unique.append(l) }
        var available = Set(eq.output)
        for (i, labels) in eq.inputs.enumerated() where i != index { available.formUnion(labels) }
        let reachable = unique.filter { available.contains($0) }
        var others = [grad], otherLabels = [eq.output]
        for (i, t) in operands.enumerated() where i != index {
            others.append(t)
            otherLabels.append(eq.inputs[i])
        }
        var g = try einsum(EinsumEquation(inputs: otherLabels, output: reachable), others, name: name)
        // Labels only this operand had were summed in forward: their cotangent is a broadcast.
        let fullShape = unique.map { sizes[$0] ?? 1 }
        g = try g.reshaped(unique.map { reachable.contains($0) ? sizes[$0] ?? 1 : 1 }).broadcast(to: fullShape, op: name)
        // Axes that were broadcast from size 1 sum back.
        let own = unique.map { l in target.indices.filter { target[$0] == l }.map { operands[index].shape[$0] }.min() ?? 1 }
        g = try g.sumToShape(own, op: name)
        if unique.count == target.count { return g }
        // Repeated labels: place the values on the diagonal of a zero tensor.
        let shape = operands[index].shape
        let strides = Shape.strides(shape)
        let uniqueStrides = unique.map { l in target.indices.filter { target[$0] == l }.reduce(0) { $0 + strides[$1] } }
        let out = einsumScatter(try g.floats(name), shape: own, strides: uniqueStrides, count: shape.reduce(1, *))
        return Tensor(uncheckedShape: shape, storage: .float32(out))
    }

    static func einsumLabelSizes(_ inputs: [[Int]], _ shapes: [[Int]], _ name: String) throws -> [Int: Int] {
        var sizes: [Int: Int] = [:]
        for (labels, shape) in zip(inputs, shapes) {
            for (l, d) in zip(labels, shape) {
                if let s = sizes[l], s != d {
                    guard s == 1 || d == 1 else {
                        throw TensorError.shapeMismatch(op: name, expected: "consistent sizes for each einsum label", got: shapes)
                    }
                    sizes[l] = Swift.max(s, d)
                } else {
                    sizes[l] = d
                }
            }
        }
        return sizes
    }
}

/// A float tensor whose axes carry einsum labels (distinct once ``diagonal()`` ran).
fileprivate struct LabeledTensor {
    var tensor: Tensor
    var labels: [Int]

    init(_ tensor: Tensor, _ labels: [Int]) {
        self.tensor = tensor
        self.labels = labels
    }

    /// Collapses repeated labels to their diagonal.
    func diagonal() throws -> LabeledTensor {
        var unique: [Int] = []
        for l in labels where !unique.contains(l) { unique.append(l) }
        if unique.count == labels.count { return self }
        let strides = Shape.strides(tensor.shape)
        let shape = unique.map { l in labels.indices.filter { labels[$0] == l }.map { tensor.shape[$0] }.min() ?? 1 }
        let st = unique.map { l in labels.indices.filter { labels[$0] == l }.reduce(0) { $0 + strides[$1] } }
        let out = einsumGather(try tensor.floats(), shape: shape, strides: st)
        return LabeledTensor(Tensor(uncheckedShape: shape, storage: .float32(out)), unique)
    }

    /// Materialises size-1 axes whose label is larger elsewhere (ellipsis broadcasting).
    func broadcastLabels(_ sizes: [Int: Int], _ name: String) throws -> LabeledTensor {
        let target = labels.map { sizes[$0] ?? 1 }
        if target == tensor.shape { return self }
        return LabeledTensor(try tensor.broadcast(to: target, op: name), labels)
    }

    /// Sums out every label not in `keep`.
    func sumOut(keeping keep: Set<Int>) throws -> LabeledTensor {
        let axes = labels.indices.filter { !keep.contains(labels[$0]) }
        if axes.isEmpty { return self }
        return LabeledTensor(try tensor.reduce(.sum, axes: axes, keepDims: false), labels.filter { keep.contains($0) })
    }

    /// Axes reordered so the labels read `order` (a permutation of `labels`).
    func permuted(to order: [Int]) throws -> LabeledTensor {
        if order == labels { return self }
        let perm = order.map { l in labels.firstIndex(of: l) ?? 0 }
        let strides = Shape.strides(tensor.shape)
        let shape = perm.map { tensor.shape[$0] }
        let out = einsumGather(try tensor.floats(), shape: shape, strides: perm.map { strides[$0] })
        return LabeledTensor(Tensor(uncheckedShape: shape, storage: .float32(out)), order)
    }

    /// Contracts with `other` over their shared labels not in `keep`; shared labels in `keep`
    /// become batch axes. Result labels: batch, then self's free labels, then other's.
    func contract(with other: LabeledTensor, keep: Set<Int>, _ name: String) throws -> LabeledTensor {
        let a = try sumOut(keeping: keep.union(other.labels))
        let b = try other.sumOut(keeping: keep.union(a.labels))
        let shared = a.labels.filter { b.labels.contains($0) }
        let batch = shared.filter { keep.contains($0) }
        let summed = shared.filter { !keep.contains($0) }
        let left = a.labels.filter { !shared.contains($0) }
        let right = b.labels.filter { !shared.contains($0) }
        let ap = try a.permuted(to: batch + left + summed), bp = try b.permuted(to: batch + summed + right)
        func size(_ t: LabeledTensor, _ ls: [Int]) -> Int {
            ls.reduce(1) { acc, l in acc * t.tensor.shape[t.labels.firstIndex(of: l) ?? 0] }
        }
        let nb = size(ap, batch), m = size(ap, left), k = size(ap, summed), n = size(bp, right)
        let av = try ap.tensor.floats(name), bv = try bp.tensor.floats(name)
        var out = [Float](repeating: 0, count: nb * m * n)
        av.withUnsafeBufferPointer { pa in
            bv.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    einsumBatchedMatMul(pa, pb, pc, batch: nb, m: m, k: k, n: n)
                }
            }
        }
        let labels = batch + left + right
        let shape = labels.map { l in
            if let i = ap.labels.firstIndex(of: l) { return ap.tensor.shape[i] }
            return bp.tensor.shape[bp.labels.firstIndex(of: l) ?? 0]
        }
        return LabeledTensor(Tensor(uncheckedShape: shape, storage: .float32(out)), labels)
    }
}

/// `C[b] = A[b]·B[b]` for row-major `A: [batch, m, k]`, `B: [batch, k, n]`, `C: [batch, m, n]`
/// (C zeroed). The i-k-j order keeps the innermost loop contiguous in B and C.
fileprivate func einsumBatchedMatMul(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, _ c: UnsafeMutableBufferPointer<Float>,
                   batch: Int, m: Int, k: Int, n: Int) {
    for t in 0..<batch {
        let ao = t * m * k, bo = t * k * n, co = t * m * n
        for i in 0..<m {
            for p in 0..<k {
                let av = a[ao + i * k + p]
                let brow = bo + p * n, crow = co + i * n
                for j in 0..<n { c[crow + j] += av * b[brow + j] }
            }
        }
    }
}

/// `out[i] = src[Σ idx_d · strides[d]]` over the multi-indices of `shape` (permutations,
/// diagonals).
fileprivate func einsumGather(_ src: [Float], shape: [Int], strides: [Int]) -> [Float] {
    let count = shape.reduce(1, *)
    var out = [Float](repeating: 0, count: count)
    if count == 0 { return out }
    var idx = [Int](repeating: 0, count: shape.count)
    var off = 0
    src.withUnsafeBufferPointer { s in
        for i in 0..<count {
            out[i] = s[off]
            var d = shape.count - 1
            while d >= 0 {
                idx[d] += 1
                off += strides[d]
                if idx[d] < shape[d] { break }
                off -= strides[d] * shape[d]
                idx[d] = 0
                d -= 1
            }
        }
    }
    return out
}

/// Adjoint of ``einsumGather(_:shape:strides:)`` for injective index maps: a zero array of
/// `count` with `values` written at the gathered positions.
fileprivate func einsumScatter(_ values: [Float], shape: [Int], strides: [Int], count: Int) -> [Float] {
    var out = [Float](repeating: 0, count: count)
    var idx = [Int](repeating: 0, count: shape.count)
    var off = 0
    for v in values {
        out[off] = v
        var d = shape.count - 1
        while d >= 0 {
            idx[d] += 1
            off += strides[d]
            if idx[d] < shape[d] { break }
            off -= strides[d] * shape[d]
            idx[d] = 0
            d -= 1
        }
    }
    return out
}
