extension Tensor {
    /// Reorders the axes: output axis `d` is input axis `perm[d]` (ONNX Transpose, NumPy
    /// `transpose(perm)`). Shape `[d_0, ..., d_{r-1}]` becomes `[d_perm[0], ..., d_perm[r-1]]`.
    ///
    /// Fast paths: axes that stay adjacent are merged first, so the common 4-D permutations of
    /// exported models become either a copy of contiguous rows (`[0,2,1,3]`, attention heads) or a
    /// batched, cache-tiled 2-D transpose (`[0,2,3,1]`/`[0,3,1,2]` NCHW↔NHWC, `[0,1,3,2]` Kᵀ).
    ///
    /// Works on every dtype. Throws if `perm` is not a permutation of `0..<rank`.
    public func permuted(_ perm: [Int]) throws -> Tensor {
        try Movement.checkPermutation(perm, rank: rank, op: "Transpose")
        let outShape = perm.map { shape[$0] }
        switch storage {
        case let .float32(a): return Tensor(uncheckedShape: outShape, storage: .float32(Movement.permute(a, shape: shape, perm: perm)))
        case let .int64(a): return Tensor(uncheckedShape: outShape, storage: .int64(Movement.permute(a, shape: shape, perm: perm)))
        case let .bool(a): return Tensor(uncheckedShape: outShape, storage: .bool(Movement.permute(a, shape: shape, perm: perm)))
        }
    }

    /// The inverse permutation of `perm`: `permuted(perm).permuted(inversePermutation(perm)) == self`.
    public static func inversePermutation(_ perm: [Int]) -> [Int] {
        var inv = [Int](repeating: 0, count: perm.count)
        for (d, p) in perm.enumerated() where p >= 0 && p < perm.count { inv[p] = d }
        return inv
    }
}

extension Movement {
    static func checkPermutation(_ perm: [Int], rank: Int, op: String) throws {
        guard perm.count == rank, Set(perm) == Set(0 ..< rank) else {
            throw TensorError.invalidArgument(op: op, message: "perm \(perm) is not a permutation of 0..<\(rank)")
        }
    }

    /// Merges runs of axes that stay adjacent and in order under `perm`, and drops size-1 axes.
    /// Returns the reduced input shape and permutation, which move elements identically.
    static func simplifyPermutation(shape: [Int], perm: [Int]) -> (shape: [Int], perm: [Int]) {
        let keep = perm.filter { shape[$0] != 1 }
        // Output order of kept input axes; merge i→i+1 runs.
        var groups: [[Int]] = []
        for a in keep {
            if var g = groups.last, let l = g.last, a == l + 1 {
                g.append(a)
                groups[groups.count - 1] = g
            } else {
                groups.append([a])
            }
        }
        // Number the groups by their input position.
        let byInput = groups.indices.sorted { groups[$0][0] < groups[$1][0] }
        var newIndex = [Int](repeating: 0, count: groups.count)
        for (rank, g) in byInput.enumerated() { newIndex[g] = rank }
        let newShape = byInput.map { groups[$0].reduce(1) { $0 * shape[$1] } }
        let newPerm = groups.indices.map { newIndex[$0] }
        return (newShape, newPerm)
    }

    static func permute<T: MovableElement>(_ src: [T], shape: [Int], perm: [Int]) -> [T] {
        let n = src.count
        if n == 0 { return [] }
        let (s, p) = simplifyPermutation(shape: shape, perm: perm)
        let r = s.count
        if r <= 1 || p == Array(0 ..< r) { return src }
        let strides = Shape.strides(s)
        // The last axis stays last: contiguous rows (attention head split/merge, (T,B,D)↔(B,T,D)).
        if p[r - 1] == r - 1 {
            return src.withUnsafeBufferPointer { sp in
                filled(n) { o in
                    copyRuns(sp.baseAddress!, base: 0, outer: p.dropLast().map { s[$0] },
                             srcStrides: p.dropLast().map { strides[$0] }, run: s[r - 1], to: o)
                }
            }
        }
        // Batched 2-D transpose: identity on leading axes, swap of the last two.
        if p[r - 2] == r - 1 && p[r - 1] == r - 2 && Array(p[..<(r - 2)]) == Array(0 ..< (r - 2)) {
            let rows = s[r - 2], cols = s[r - 1]
            return src.withUnsafeBufferPointer { sp in
                filled(n) { o in transposeBatched(sp.baseAddress!, o, batch: n / (rows * cols), rows: rows, cols: cols) }
            }
        }
        // General case.
        let tables = p.map { a in (0 ..< s[a]).map { $0 * strides[a] } }
        return AxisTables(shape: p.map { s[$0] }, tables: tables).gather(src, fill: T.movementZero)
    }

    /// Reference twin of ``permute(_:shape:perm:)``: one offset table per axis, no fast paths.
    static func permuteReference<T: MovableElement>(_ src: [T], shape: [Int], perm: [Int]) -> [T] {
        if src.isEmpty { return [] }
        let strides = Shape.strides(shape)
        let tables = perm.map { a in (0 ..< shape[a]).map { $0 * strides[a] } }
        return AxisTables(shape: perm.map { shape[$0] }, tables: tables).gather(src, fill: T.movementZero)
    }
}
