/// Inner loops shared by the element-wise kernels. Each takes the element function as an
/// `@inline(__always)` closure so the optimiser specialises one loop per operation (the closure is
/// inlined, never called per element); callers `switch` on the operation outside these loops.
/// The loops walk runs with ``BroadcastPlan/RunIterator`` rather than a per-run closure: a
/// closure inside a closure left the element function as a call per element (measured 4× slower).

/// `out[i] = f(a[i], b[i])` over a broadcast plan of two operands.
@inline(__always)
@usableFromInline
func broadcastLoop2<A, B, R>(_ plan: BroadcastPlan, _ a: UnsafeBufferPointer<A>, _ b: UnsafeBufferPointer<B>,
                             _ o: UnsafeMutableBufferPointer<R>, _ f: (A, B) -> R) {
    precondition(o.count == plan.count, "output buffer does not match the broadcast plan")
    guard let pa = a.baseAddress, let pb = b.baseAddress, let po = o.baseAddress else { return }
    let n = plan.inner
    let (sa, sb, _) = plan.innerStrides
    var runs = plan.runs()
    while runs.next() {
        // Run-relative pointers: the loop index cannot overflow, so the loops vectorise.
        let x = pa + runs.offset0, y = pb + runs.offset1, z = po + runs.out
        if sa == 1 && sb == 1 {
            for i in 0..<n { z[i] = f(x[i], y[i]) }
        } else if sa == 1 {
            let bv = y[0]
            for i in 0..<n { z[i] = f(x[i], bv) }
        } else if sb == 1 {
            let av = x[0]
            for i in 0..<n { z[i] = f(av, y[i]) }
        } else {
            let v = f(x[0], y[0])
            for i in 0..<n { z[i] = v }
        }
    }
}

/// `out[i] = f(a[i], b[i], c[i])` over a broadcast plan of three operands.
@inline(__always)
@usableFromInline
func broadcastLoop3<A, B, C, R>(_ plan: BroadcastPlan, _ a: UnsafeBufferPointer<A>, _ b: UnsafeBufferPointer<B>,
                                _ c: UnsafeBufferPointer<C>, _ o: UnsafeMutableBufferPointer<R>, _ f: (A, B, C) -> R) {
    precondition(o.count == plan.count, "output buffer does not match the broadcast plan")
    guard let pa = a.baseAddress, let pb = b.baseAddress, let pc = c.baseAddress, let po = o.baseAddress else { return }
    let n = plan.inner
    let (sa, sb, sc) = plan.innerStrides
    var runs = plan.runs()
    while runs.next() {
        let x = pa + runs.offset0, y = pb + runs.offset1, w = pc + runs.offset2, z = po + runs.out
        if sa == 1 && sb == 1 && sc == 1 {
            for i in 0..<n { z[i] = f(x[i], y[i], w[i]) }
        } else {
            for i in 0..<n { z[i] = f(x[i &* sa], y[i &* sb], w[i &* sc]) }
        }
    }
}

/// `out[i] = f(a[i])` over a broadcast plan of one operand (materialising a broadcast).
@inline(__always)
@usableFromInline
func broadcastLoop1<A, R>(_ plan: BroadcastPlan, _ a: UnsafeBufferPointer<A>, _ o: UnsafeMutableBufferPointer<R>,
                          _ f: (A) -> R) {
    precondition(o.count == plan.count, "output buffer does not match the broadcast plan")
    guard let pa = a.baseAddress, let po = o.baseAddress else { return }
    let n = plan.inner
    let sa = plan.innerStrides.0
    var runs = plan.runs()
    while runs.next() {
        let x = pa + runs.offset0, z = po + runs.out
        if sa == 1 {
            for i in 0..<n { z[i] = f(x[i]) }
        } else {
            let v = f(x[0])
            for i in 0..<n { z[i] = v }
        }
    }
}

/// `out[i] = f(a[i])` over contiguous buffers of equal length.
@inline(__always)
@usableFromInline
func mapLoop<A, R>(_ a: UnsafeBufferPointer<A>, _ o: UnsafeMutableBufferPointer<R>, _ f: (A) -> R) {
    for i in 0..<a.count { o[i] = f(a[i]) }
}

/// `out[i] = f(a[i], b[i])` over contiguous buffers of equal length.
@inline(__always)
@usableFromInline
func zipLoop<A, B, R>(_ a: UnsafeBufferPointer<A>, _ b: UnsafeBufferPointer<B>, _ o: UnsafeMutableBufferPointer<R>,
                      _ f: (A, B) -> R) {
    for i in 0..<a.count { o[i] = f(a[i], b[i]) }
}

/// `out[i] = f(a[i], b[i], c[i])` over contiguous buffers of equal length.
@inline(__always)
@usableFromInline
func zip3Loop<A, B, C, R>(_ a: UnsafeBufferPointer<A>, _ b: UnsafeBufferPointer<B>, _ c: UnsafeBufferPointer<C>,
                          _ o: UnsafeMutableBufferPointer<R>, _ f: (A, B, C) -> R) {
    for i in 0..<a.count { o[i] = f(a[i], b[i], c[i]) }
}

/// Allocates `count` elements, lets `body` fill them, and returns the array without a zeroing
/// pass the kernel would overwrite anyway.
@inline(__always)
@usableFromInline
func arrayFilledBy<T>(count: Int, _ body: (UnsafeMutableBufferPointer<T>) throws -> Void) rethrows -> [T] {
    try [T](unsafeUninitializedCapacity: count) { buf, n in
        try body(buf)
        n = count
    }
}
