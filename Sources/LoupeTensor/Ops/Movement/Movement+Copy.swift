/// Bulk copy kernels behind the movement fast paths: strided runs copied with `memcpy`-like
/// moves and batched cache-tiled 2-D transposes, split across the thread pool when the tensor is
/// large enough for a second core to pay off (memory-bound copies gain less than 2x, but a
/// transformer at batch 16 moves tens of megabytes per forward pass through these).
extension Movement {
    /// Elements below which a contiguous copy stays on the calling thread. One core already
    /// streams ~50 GB/s here, so a second thread only pays off for very large copies, and on a
    /// loaded machine waiting for a descheduled worker costs far more than it saves (measured
    /// in the ViT-tiny b16 forward: the 7 MB q/k/v permute took 0.96 ms split, 0.66 ms serial).
    nonisolated(unsafe) static var parallelCopyThreshold = 1 << 22

    /// Elements from which a batched 2-D transpose is split over the pool. With 8×8 register
    /// blocks a float transpose runs near copy speed (~80 µs for ViT-tiny's b16 Kᵀ, 600K
    /// elements), so the same reasoning as for copies applies: in the ViT b16 forward the split
    /// Kᵀ and NCHW→token transposes took 0.7–1.4 ms per call against ~0.16 ms for a serial
    /// permute of the same size. Both thresholds are variables only so tests can force the
    /// parallel paths on tiny shapes.
    nonisolated(unsafe) static var parallelTransposeThreshold = 1 << 22

    /// Copies `outer.reduce(1, *)` runs of `run` contiguous elements: run number `i` (row-major
    /// over `outer`) comes from `src + base + Σ_d idx_d · srcStrides[d]` and goes to
    /// `dst + i · run`. Covers permutations that keep the last axis, step-1 slices and gathers
    /// of whole blocks.
    static func copyRuns<T: MovableElement>(_ src: UnsafePointer<T>, base: Int, outer: [Int], srcStrides: [Int],
                                            run: Int, to dst: UnsafeMutablePointer<T>) {
        let rows = outer.reduce(1, *)
        if rows == 0 || run == 0 { return }
        let r = outer.count
        if rows == 1 {
            // One long run (a block of a fused tensor): split the run itself.
            let pieces = run >= parallelCopyThreshold ? 4 * Kernels.threads : 1
            let per = (run + pieces - 1) / pieces
            let start = src + base  // every outer index is 0
            let body = { (c: Int) in
                let lo = c * per, hi = min(run, lo + per)
                if lo < hi { (dst + lo).initialize(from: start + lo, count: hi - lo) }
            }
            if pieces == 1 { body(0) } else { Kernels.parallelFor(pieces, body) }
            return
        }
        // Rows are independent; split them into a few chunks when the copy is large.
        let total = rows * run
        let chunks = total >= parallelCopyThreshold ? min(rows, 4 * Kernels.threads) : 1
        let perChunk = (rows + chunks - 1) / chunks
        let body = { (c: Int) in
            let lo = c * perChunk, hi = min(rows, lo + perChunk)
            if lo >= hi { return }
            // Odometer state for row `lo`.
            withUnsafeTemporaryAllocation(of: Int.self, capacity: r) { idx in
                var rem = lo, off = base
                for d in stride(from: r - 1, through: 0, by: -1) {
                    idx[d] = rem % outer[d]
                    rem /= outer[d]
                    off += idx[d] * srcStrides[d]
                }
                let innerDim = outer[r - 1], innerStride = srcStrides[r - 1]
                var row = lo
                var out = dst + lo * run
                while row < hi {
                    // Innermost outer axis in a tight loop.
                    var j = idx[r - 1]
                    while j < innerDim && row < hi {
                        out.initialize(from: src + off, count: run)
                        out += run
                        off += innerStride
                        j += 1
                        row += 1
                    }
                    if row >= hi { break }
                    off -= innerStride * innerDim
                    idx[r - 1] = 0
                    var d = r - 2
                    while d >= 0 {
                        idx[d] += 1
                        off += srcStrides[d]
                        if idx[d] < outer[d] { break }
                        off -= srcStrides[d] * outer[d]
                        idx[d] = 0
                        d -= 1
                    }
                }
            }
        }
        if chunks == 1 { body(0) } else { Kernels.parallelFor(chunks, body) }
    }

    /// `batch` independent `rows × cols` → `cols × rows` transposes, in 32×32 tiles so both the
    /// reads and the writes stay within a few cache lines per tile. Large inputs are split over
    /// the pool by (batch, band of 32 source rows). Floats go through 8×8 register blocks
    /// (``transpose8x8(_:_:_:_:)``), about 4x faster than element-wise moves.
    static func transposeBatched<T: MovableElement>(_ s: UnsafePointer<T>, _ o: UnsafeMutablePointer<T>,
                                                    batch: Int, rows: Int, cols: Int) {
        let tile = 32
        let bands = (rows + tile - 1) / tile
        let isFloat = T.self == Float.self
        let body = { (task: Int) in
            let b = task / bands, i0 = (task % bands) * tile
            let base = b * rows * cols
            let i1 = min(i0 + tile, rows)
            if isFloat {
                let sf = UnsafeRawPointer(s + base).assumingMemoryBound(to: Float.self)
                let of = UnsafeMutableRawPointer(o + base).assumingMemoryBound(to: Float.self)
                transposeBand(sf, of, i0: i0, i1: i1, rows: rows, cols: cols)
                return
            }
            var j0 = 0
            while j0 < cols {
                let j1 = min(j0 + tile, cols)
                for i in i0 ..< i1 {
                    let srow = s + base + i * cols
                    let ocol = o + base + i
                    for j in j0 ..< j1 { (ocol + j * rows).initialize(to: srow[j]) }
                }
                j0 = j1
            }
        }
        let tasks = batch * bands
        if batch * rows * cols >= parallelTransposeThreshold && tasks > 1 {
            Kernels.parallelFor(tasks, body)
        } else {
            for t in 0 ..< tasks { body(t) }
        }
    }

    /// Source rows `i0..<i1` of one `rows × cols` float transpose, in 32-column tiles of 8×8
    /// register blocks, with scalar edges.
    static func transposeBand(_ s: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>,
                              i0: Int, i1: Int, rows: Int, cols: Int) {
        let tile = 32
        var j0 = 0
        while j0 < cols {
            let j1 = min(j0 + tile, cols)
            var i = i0
            while i + 8 <= i1 {
                var j = j0
                while j + 8 <= j1 {
                    transpose8x8(s + i * cols + j, cols, o + j * rows + i, rows)
                    j += 8
                }
                while j < j1 {
                    for ii in i ..< i + 8 { o[j * rows + ii] = s[ii * cols + j] }
                    j += 1
                }
                i += 8
            }
            while i < i1 {
                for j in j0 ..< j1 { o[j * rows + i] = s[i * cols + j] }
                i += 1
            }
            j0 = j1
        }
    }

    /// Transposes one 8×8 block: eight SIMD row loads (stride `ls`), eight SIMD column stores
    /// (stride `lo`); the lane shuffles stay in registers.
    @inline(__always)
    static func transpose8x8(_ s: UnsafePointer<Float>, _ ls: Int, _ o: UnsafeMutablePointer<Float>, _ lo: Int) {
        let p = UnsafeRawPointer(s)
        let r0 = p.loadUnaligned(as: SIMD8<Float>.self)
        let r1 = p.loadUnaligned(fromByteOffset: 4 * ls, as: SIMD8<Float>.self)
        let r2 = p.loadUnaligned(fromByteOffset: 8 * ls, as: SIMD8<Float>.self)
        let r3 = p.loadUnaligned(fromByteOffset: 12 * ls, as: SIMD8<Float>.self)
        let r4 = p.loadUnaligned(fromByteOffset: 16 * ls, as: SIMD8<Float>.self)
        let r5 = p.loadUnaligned(fromByteOffset: 20 * ls, as: SIMD8<Float>.self)
        let r6 = p.loadUnaligned(fromByteOffset: 24 * ls, as: SIMD8<Float>.self)
        let r7 = p.loadUnaligned(fromByteOffset: 28 * ls, as: SIMD8<Float>.self)
        let q = UnsafeMutableRawPointer(o)
        for j in 0 ..< 8 {
            let c = SIMD8<Float>(r0[j], r1[j], r2[j], r3[j], r4[j], r5[j], r6[j], r7[j])
            q.storeBytes(of: c, toByteOffset: 4 * j * lo, as: SIMD8<Float>.self)
        }
    }

    /// An array of `count` elements filled by `body` through a pointer to uninitialised storage
    /// (every movement element type is trivial, so `body` must simply write all of them).
    @inline(__always)
    static func filled<T: MovableElement>(_ count: Int, _ body: (UnsafeMutablePointer<T>) -> Void) -> [T] {
        [T](unsafeUninitializedCapacity: count) { buf, initialized in
            if count > 0, let p = buf.baseAddress { body(p) }
            initialized = count
        }
    }
}
