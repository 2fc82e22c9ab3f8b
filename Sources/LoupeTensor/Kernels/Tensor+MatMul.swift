import CLoupeKernels
/// Matrix products on tensors, NumPy `matmul` semantics (ONNX MatMul).
extension Tensor {
    /// NumPy `matmul`: the last two dimensions multiply (m × k · k × n); leading (batch)
    /// dimensions broadcast. A 1-D left operand is a row vector and a 1-D right operand a column
    /// vector; the added dimension is removed from the result.
    public func matmul(_ other: Tensor) throws -> Tensor { try Kernels.matmul(self, other) }
}

extension Kernels {
    /// Batched, broadcasting matrix product `op(a) · op(b)` (see ``Tensor/matmul(_:)``), where
    /// `transposeA`/`transposeB` swap the last two dimensions of an operand of rank ≥ 2 without
    /// copying it.
    ///
    /// - Parameters:
    ///   - packedB: `b` pre-packed (a constant 2-D weight, ``PackedMatMulWeights``); used when it
    ///     ``PackedMatMulWeights/matches(_:)`` `b` and `b` is not transposed.
    ///   - columnBias: a float32 vector of the result's last dimension added to every row (ONNX
    ///     `Add(MatMul(x, W), b)` of a Linear layer in one pass: inside the GEMM's tiles on the
    ///     pre-packed path, else after it).
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false,
                              packedB: PackedMatMulWeights? = nil, columnBias: Tensor? = nil) throws -> Tensor {
        guard let columnBias else {
            return try matmul(a, b, transposeA: transposeA, transposeB: transposeB, packedB: packedB, bias: nil)
        }
        let n = transposeB && b.rank >= 2 ? b.shape[b.rank - 2] : b.shape.last ?? 0
        guard columnBias.dtype == .float32, columnBias.count == n, b.rank >= 2 else {
            throw TensorError.shapeMismatch(op: "MatMul", expected: "a float32 bias of \(n) values", got: [columnBias.shape])
        }
        return try columnBias.withFloats("MatMul bias") { bias in
            try matmul(a, b, transposeA: transposeA, transposeB: transposeB, packedB: packedB, bias: bias.baseAddress)
        }
    }

    private static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool,
                               packedB: PackedMatMulWeights?, bias: UnsafePointer<Float>?) throws -> Tensor {
        let prepacked = packedB.flatMap { !transposeB && b.rank == 2 && $0.matches(b) ? $0 : nil }
        var sa = a.shape, sb = b.shape
        guard !sa.isEmpty, !sb.isEmpty else {
            throw TensorError.shapeMismatch(op: "MatMul", expected: "operands of rank >= 1", got: [sa, sb])
        }
        let aVector = sa.count == 1, bVector = sb.count == 1
        if aVector { sa = [1, sa[0]] }
        if bVector { sb = [sb[0], 1] }
        let ra = sa.count, rb = sb.count
        let m = transposeA && !aVector ? sa[ra - 1] : sa[ra - 2]
        let ka = transposeA && !aVector ? sa[ra - 2] : sa[ra - 1]
        let kb = transposeB && !bVector ? sb[rb - 1] : sb[rb - 2]
        let n = transposeB && !bVector ? sb[rb - 2] : sb[rb - 1]
        guard ka == kb else {
            throw TensorError.shapeMismatch(op: "MatMul", expected: "inner dimensions to agree (\(ka) vs \(kb))", got: [a.shape, b.shape])
        }
        let batchA = Array(sa.dropLast(2)), batchB = Array(sb.dropLast(2))
        let batch = try Shape.broadcast(batchA, batchB, op: "MatMul")
        var outShape = batch + [m, n]
        if bVector { outShape.removeLast() }
        if aVector { outShape.remove(at: outShape.count - (bVector ? 1 : 2)) }
        let batchCount = batch.reduce(1, *)
        let A = try a.floats("MatMul"), B = try b.floats("MatMul")
        let tA = transposeA && !aVector, tB = transposeB && !bVector
        let lda = sa[ra - 1], ldb = sb[rb - 1]
        let k = ka
        // Offsets of each batch entry in a and b under broadcasting.
        let offA = broadcastOffsets(batchA, to: batch, matrixSize: sa[ra - 2] * sa[ra - 1])
        let offB = broadcastOffsets(batchB, to: batch, matrixSize: sb[rb - 2] * sb[rb - 1])
        // Every element is written by a beta = 0 GEMM, so the result starts uninitialised
        // (except when k == 0 or a dimension is empty, where it is zero-filled here).
        let total = batchCount * m * n
        let out = [Float](unsafeUninitializedCapacity: total) { pc, initialized in
            initialized = total
            A.withUnsafeBufferPointer { pa in
                B.withUnsafeBufferPointer { pb in
                    guard let c0 = pc.baseAddress, total > 0 else { return }
                    guard let a0 = pa.baseAddress, let b0 = pb.baseAddress, k > 0 else {
                        c0.initialize(repeating: 0, count: total)
                        if let bias { addColumnBias(c0, rows: total / n, n: n, bias) }
                        return
                    }
                    // A shared right operand and a plain left one: one tall GEMM over all batches.
                    if batchB.reduce(1, *) == 1 && !tA && batchA == batch {
                        if let prepacked, batchCount * m > 1,
                           prepacked.multiply(transposeA: false, m: batchCount * m, a0, lda: lda, into: c0, ldc: n,
                                              columnBias: bias) {
                            return
                        }
                        gemm(transB: tB, m: batchCount * m, n: n, k: k, a: a0, lda: lda, b: b0, ldb: ldb, c: c0, ldc: n)
                    } else {
                        batchedGEMM(batch: batchCount, transA: tA, transB: tB, m: m, n: n, k: k,
                                    a: a0, offsetsA: offA, lda: lda, b: b0, offsetsB: offB, ldb: ldb, c: c0)
                    }
                    if let bias { addColumnBias(c0, rows: total / n, n: n, bias) }
                }
            }
        }
        return Tensor(uncheckedShape: outShape, storage: .float32(out))
    }

    /// c[r·n + j] += bias[j] for every row, in place: the bias of a product the GEMM did not add
    /// (the row-vector broadcast of the element-wise add).
    private static func addColumnBias(_ c: UnsafeMutablePointer<Float>, rows: Int, n: Int, _ bias: UnsafePointer<Float>) {
        loupe_vbinary(Int32(LOUPE_VB_ADD.rawValue), c, n, 1, bias, 0, 1, c, rows, n)
    }

    /// `batch` independent products `C_i = op(A_i) · op(B_i)` (`C_i` dense m × n, one after
    /// another from `c`), scheduled as one parallel region of single-threaded GEMMs.
    ///
    /// Attention's products (heads × batch of 197×64·64×197 at ViT-tiny) are too small for a
    /// multi-threaded GEMM to split well, and one pool wake-up per product adds up. Instead each
    /// product is cut into bands of rows until there are a few tasks per thread, and every task
    /// runs a serial GEMM, so the whole batch costs one wake-up and no thread idles on a
    /// 3-product batch.
    static func batchedGEMM(batch: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                            a: UnsafePointer<Float>, offsetsA: [Int], lda: Int,
                            b: UnsafePointer<Float>, offsetsB: [Int], ldb: Int, c: UnsafeMutablePointer<Float>) {
        let work = batch * m * n * k
        let threads = Kernels.threads
        // One product, or too little work for a second thread: plain calls.
        if batch == 1 || threads <= 1 || work < 64 * 64 * 64 {
            for i in 0 ..< batch {
                gemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a + offsetsA[i], lda: lda,
                     b: b + offsetsB[i], ldb: ldb, c: c + i * m * n, ldc: n, parallel: batch == 1)
            }
            return
        }
        // Bands per product: enough tasks to balance (≥ 4 per thread), but no band under 32 rows,
        // since each band packs its own copy of op(B_i).
        let wanted = (4 * threads + batch - 1) / batch
        let bands = max(1, min(wanted, m / 32))
        let rowsPerBand = (m + bands - 1) / bands
        let body = { (task: Int) in
            let i = task / bands, r0 = (task % bands) * rowsPerBand
            let rows = min(rowsPerBand, m - r0)
            if rows <= 0 { return }
            let aStart = a + offsetsA[i] + (transA ? r0 : r0 * lda)
            gemm(transA: transA, transB: transB, m: rows, n: n, k: k, a: aStart, lda: lda,
                 b: b + offsetsB[i], ldb: ldb, c: c + i * m * n + r0 * n, ldc: n, parallel: false)
        }
        parallelFor(batch * bands, body)
    }

    /// Element offset of each (flat, row-major) index of `target` batch dims in an operand whose
    /// batch dims `own` broadcast to `target`.
    static func broadcastOffsets(_ own: [Int], to target: [Int], matrixSize: Int) -> [Int] {
        let count = target.reduce(1, *)
        let r = target.count
        let padded = [Int](repeating: 1, count: r - own.count) + own
        var strides = [Int](repeating: 0, count: r)
        var acc = matrixSize
        for d in stride(from: r - 1, through: 0, by: -1) {
            strides[d] = padded[d] == 1 ? 0 : acc
            acc *= padded[d]
        }
        var offsets = [Int](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: r)
        var off = 0
        for i in 0..<count {
            offsets[i] = off
            var d = r - 1
            while d >= 0 {
                index[d] += 1
                off += strides[d]
                if index[d] < target[d] { break }
                off -= strides[d] * index[d]
                index[d] = 0
                d -= 1
            }
        }
        return offsets
    }

    /// Sums `gradient` over the dimensions that broadcasting added or stretched, giving a tensor
    /// of `shape` (the adjoint of broadcasting `shape` to `gradient.shape`).
    public static func sumToShape(_ gradient: Tensor, _ shape: [Int]) throws -> Tensor {
        if gradient.shape == shape { return gradient }
        let g = try gradient.floats("sumToShape")
        let r = gradient.rank
        guard shape.count <= r else {
            throw TensorError.shapeMismatch(op: "sumToShape", expected: "a shape broadcastable to \(gradient.shape)", got: [shape])
        }
        let padded = [Int](repeating: 1, count: r - shape.count) + shape
        for d in 0..<r where padded[d] != 1 && padded[d] != gradient.shape[d] {
            throw TensorError.shapeMismatch(op: "sumToShape", expected: "a shape broadcastable to \(gradient.shape)", got: [shape])
        }
        // Leading dimensions summed away, trailing ones kept (a bias gradient): add whole rows.
        var lead = 0
        while lead < r && padded[lead] == 1 { lead += 1 }
        if padded[lead...] == gradient.shape[lead...] {
            let inner = shape.reduce(1, *)
            let rows = inner == 0 ? 0 : g.count / inner
            var out = [Float](repeating: 0, count: inner)
            out.withUnsafeMutableBufferPointer { o in
                g.withUnsafeBufferPointer { src in
                    for i in 0 ..< rows {
                        let row = src.baseAddress! + i * inner
                        for j in 0 ..< inner { o[j] += row[j] }
                    }
                }
            }
            return Tensor(uncheckedShape: shape, storage: .float32(out))
        }
        let ownStrides = Shape.strides(padded)
        var strides = [Int](repeating: 0, count: r)
        for d in 0..<r where padded[d] != 1 { strides[d] = ownStrides[d] }
        var out = [Float](repeating: 0, count: shape.reduce(1, *))
        var index = [Int](repeating: 0, count: r)
        var off = 0
        out.withUnsafeMutableBufferPointer { o in
            g.withUnsafeBufferPointer { src in
                for i in 0..<src.count {
                    o[off] += src[i]
                    var d = r - 1
                    while d >= 0 {
                        index[d] += 1
                        off += strides[d]
                        if index[d] < gradient.shape[d] { break }
                        off -= strides[d] * index[d]
                        index[d] = 0
                        d -= 1
                    }
                }
            }
        }
        return Tensor(uncheckedShape: shape, storage: .float32(out))
    }
}
