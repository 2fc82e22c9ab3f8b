/// Iteration plan for an element-wise operation over up to three broadcast operands.
///
/// Each operand is viewed through strides in the output's index space (stride 0 along broadcast
/// dimensions). Size-1 dimensions are dropped and adjacent dimensions that every operand walks
/// contiguously are merged, so a same-shape operation becomes a single run and `(N,C,H,W) + (C,1,1)`
/// becomes runs of length `H·W`. The innermost stride of every operand is then 0 or 1, which lets
/// kernels specialise the innermost run into a tight (vectorisable) loop while only the outer
/// dimensions go through the odometer in ``forEachRun(_:)``.
public struct BroadcastPlan: Sendable {
    /// Output shape (not coalesced).
    public let shape: [Int]
    /// Total output element count.
    public let count: Int
    /// Length of the innermost run.
    public let inner: Int
    /// Innermost stride of each operand (0 or 1); entries beyond the operand count are 0.
    public let innerStrides: (Int, Int, Int)
    /// Coalesced outer dimensions (innermost run excluded) and per-operand strides along them.
    @usableFromInline let outerShape: [Int]
    @usableFromInline let outerStrides: [(Int, Int, Int)]

    /// Plans `operandShapes` (at most three) broadcast to `shape`. Throws naming `op` if an
    /// operand does not broadcast to `shape` (ONNX multidirectional rules, right-aligned).
    public init(shape: [Int], operands operandShapes: [[Int]], op: String) throws {
        precondition(operandShapes.count <= 3, "BroadcastPlan handles at most three operands")
        let r = shape.count
        // Per dimension of the output: the operand strides (0 where broadcast).
        var perDim: [(size: Int, s: [Int])] = []
        perDim.reserveCapacity(r)
        var opStrides: [[Int]] = []
        for s in operandShapes {
            guard s.count <= r else {
                throw TensorError.shapeMismatch(op: op, expected: "operand broadcastable to \(shape)", got: operandShapes)
            }
            let own = Shape.strides(s)
            var full = [Int](repeating: 0, count: r)
            for i in 0..<s.count {
                let d = r - s.count + i
                if s[i] == shape[d] {
                    full[d] = s[i] == 1 ? 0 : own[i]
                } else if s[i] != 1 {
                    throw TensorError.shapeMismatch(op: op, expected: "operand broadcastable to \(shape)", got: operandShapes)
                }
            }
            opStrides.append(full)
        }
        for d in 0..<r where shape[d] != 1 {
            perDim.append((shape[d], opStrides.map { $0[d] }))
        }
        // Merge dimension d into its outer neighbour when every operand's strides line up.
        var merged: [(size: Int, s: [Int])] = []
        for dim in perDim {
            if let last = merged.last,
               zip(last.s, dim.s).allSatisfy({ $0.0 == $0.1 * dim.size }) {
                merged[merged.count - 1] = (last.size * dim.size, dim.s)
            } else {
                merged.append(dim)
            }
        }
        func triple(_ s: [Int]) -> (Int, Int, Int) {
            (s.count > 0 ? s[0] : 0, s.count > 1 ? s[1] : 0, s.count > 2 ? s[2] : 0)
        }
        self.shape = shape
        self.count = shape.reduce(1, *)
        if let last = merged.last {
            inner = last.size
            innerStrides = triple(last.s)
            outerShape = merged.dropLast().map(\.size)
            outerStrides = merged.dropLast().map { triple($0.s) }
        } else {
            inner = 1
            innerStrides = (0, 0, 0)
            outerShape = []
            outerStrides = []
        }
    }

    /// Calls `body(outOffset, offset0, offset1, offset2)` once per innermost run, in output
    /// order. The run covers `inner` output elements starting at `outOffset`; operand `k` starts
    /// at `offsetk` and advances by `innerStrides.k` per element.
    @inlinable
    public func forEachRun(_ body: (Int, Int, Int, Int) -> Void) {
        var runs = self.runs()
        while runs.next() { body(runs.out, runs.offset0, runs.offset1, runs.offset2) }
    }

    /// The runs as an iterator. Kernels loop `while runs.next() { ... }` with the inner loop
    /// written in place, so the element function is inlined into it rather than reached through
    /// a nested closure (which the optimiser does not always inline).
    @inlinable
    public func runs() -> RunIterator { RunIterator(self) }

    /// Odometer over the coalesced outer dimensions; see ``BroadcastPlan/runs()``.
    public struct RunIterator {
        /// Start of the current run in the output and in each operand.
        public var out = 0, offset0 = 0, offset1 = 0, offset2 = 0
        @usableFromInline var index: [Int]
        @usableFromInline let dims: [Int]
        @usableFromInline let strides: [(Int, Int, Int)]
        @usableFromInline let inner: Int
        @usableFromInline var remaining: Int
        /// The innermost outer dimension, kept in scalars: most steps only advance it.
        @usableFromInline var lastIndex = 0
        @usableFromInline let lastSize: Int
        @usableFromInline let lastStride: (Int, Int, Int)

        @inlinable
        init(_ plan: BroadcastPlan) {
            dims = plan.outerShape
            strides = plan.outerStrides
            inner = plan.inner
            index = [Int](repeating: 0, count: dims.count)
            remaining = plan.count == 0 ? 0 : plan.count / Swift.max(plan.inner, 1)
            out = -plan.inner
            lastSize = dims.last ?? 1
            lastStride = strides.last ?? (0, 0, 0)
        }

        /// Advances to the next run; false when all runs were visited.
        @inlinable
        public mutating func next() -> Bool {
            guard remaining > 0 else { return false }
            remaining -= 1
            if out < 0 { out = 0; return true }
            out += inner
            lastIndex += 1
            if lastIndex < lastSize {
                offset0 += lastStride.0; offset1 += lastStride.1; offset2 += lastStride.2
                return true
            }
            // The innermost outer dimension wrapped: rewind it and carry into the outer ones.
            offset0 -= lastStride.0 * (lastSize - 1)
            offset1 -= lastStride.1 * (lastSize - 1)
            offset2 -= lastStride.2 * (lastSize - 1)
            lastIndex = 0
            var d = dims.count - 2
            while d >= 0 {
                index[d] += 1
                let st = strides[d]
                offset0 += st.0; offset1 += st.1; offset2 += st.2
                if index[d] < dims[d] { break }
                offset0 -= st.0 * dims[d]; offset1 -= st.1 * dims[d]; offset2 -= st.2 * dims[d]
                index[d] = 0
                d -= 1
            }
            return true
        }
    }
}
