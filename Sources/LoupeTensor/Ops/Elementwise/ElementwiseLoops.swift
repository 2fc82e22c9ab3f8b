/// Inner loops shared by the element-wise kernels. Each takes the element function as an
/// `@inline(__always)` closure so the optimiser specialises one loop per operation (the closure is
/// inlined, never called per element); callers `switch` on the operation outside these loops.

/// `out[i] = f(a[i], b[i])` over a broadcast plan of two operands.
@inline(__always)
@usableFromInline
func broadcastLoop2<A, B, R>(_ plan: BroadcastPlan, _ a: UnsafeBufferPointer<A>, _ b: UnsafeBufferPointer<B>,
                             _ o: UnsafeMutableBufferPointer<R>, _ f: (A, B) -> R) {
    let n = plan.inner
    let (sa, sb, _) = plan.innerStrides
    plan.forEachRun { oo, ia, ib, _ in
        if sa == 1 && sb == 1 {
            for i in 0..<n { o[oo + i] = f(a[ia + i], b[ib + i]) }
        } else if sa == 1 {
            let bv = b[ib]
            for i in 0..<n { o[oo + i] = f(a[ia + i], bv) }
        } else if sb == 1 {
            let av = a[ia]
            for i in 0..<n { o[oo + i] = f(av, b[ib + i]) }
        } else {
            let v = f(a[ia], b[ib])
            for i in 0..<n { o[oo + i] = v }
        }
    }
}

/// `out[i] = f(a[i], b[i], c[i])` over a broadcast plan of three operands.
@inline(__always)
@usableFromInline
func broadcastLoop3<A, B, C, R>(_ plan: BroadcastPlan, _ a: UnsafeBufferPointer<A>, _ b: UnsafeBufferPointer<B>,
                                _ c: UnsafeBufferPointer<C>, _ o: UnsafeMutableBufferPointer<R>, _ f: (A, B, C) -> R) {
    let n = plan.inner
    let (sa, sb, sc) = plan.innerStrides
    plan.forEachRun { oo, ia, ib, ic in
        if sa == 1 && sb == 1 && sc == 1 {
            for i in 0..<n { o[oo + i] = f(a[ia + i], b[ib + i], c[ic + i]) }
        } else {
            for i in 0..<n { o[oo + i] = f(a[ia + i * sa], b[ib + i * sb], c[ic + i * sc]) }
        }
    }
}

/// `out[i] = f(a[i])` over a broadcast plan of one operand (materialising a broadcast).
@inline(__always)
@usableFromInline
func broadcastLoop1<A, R>(_ plan: BroadcastPlan, _ a: UnsafeBufferPointer<A>, _ o: UnsafeMutableBufferPointer<R>,
                          _ f: (A) -> R) {
    let n = plan.inner
    let sa = plan.innerStrides.0
    plan.forEachRun { oo, ia, _, _ in
        if sa == 1 {
            for i in 0..<n { o[oo + i] = f(a[ia + i]) }
        } else {
            let v = f(a[ia])
            for i in 0..<n { o[oo + i] = v }
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
func makeArray<T>(count: Int, _ body: (UnsafeMutableBufferPointer<T>) throws -> Void) rethrows -> [T] {
    try [T](unsafeUninitializedCapacity: count) { buf, n in
        try body(buf)
        n = count
    }
}
