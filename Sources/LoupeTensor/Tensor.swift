import CLoupeKernels
import Foundation

/// An n-dimensional array with value semantics (copy-on-write storage).
///
/// Shapes are row-major (C order), NCHW for images. A rank-0 tensor has `shape == []` and one
/// element. Storage is a Swift array per element type; kernels reach it through
/// `withUnsafeBufferPointer`-style accessors so hot loops run on raw pointers.
public struct Tensor: Sendable, Equatable {
    /// Typed element storage, row-major.
    public enum Storage: Sendable, Equatable {
        case float32([Float])
        case int64([Int64])
        case bool([Bool])
    }

    /// Dimensions, outermost first.
    public let shape: [Int]
    /// The elements.
    public private(set) var storage: Storage

    /// Creates a tensor, checking that `storage` holds exactly `shape.product` elements.
    public init(shape: [Int], storage: Storage) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw TensorError.invalidArgument(op: "Tensor", message: "negative dimension in shape \(shape)")
        }
        let n = shape.reduce(1, *)
        let count: Int
        switch storage {
        case let .float32(a): count = a.count
        case let .int64(a): count = a.count
        case let .bool(a): count = a.count
        }
        guard n == count else { throw TensorError.countMismatch(shape: shape, count: count) }
        self.shape = shape
        self.storage = storage
    }

    /// Internal unchecked initializer for kernels that construct storage of the right size.
    @usableFromInline
    init(uncheckedShape shape: [Int], storage: Storage) {
        self.shape = shape
        self.storage = storage
    }

    public init(shape: [Int], floats: [Float]) throws { try self.init(shape: shape, storage: .float32(floats)) }
    public init(shape: [Int], ints: [Int64]) throws { try self.init(shape: shape, storage: .int64(ints)) }
    public init(shape: [Int], bools: [Bool]) throws { try self.init(shape: shape, storage: .bool(bools)) }

    /// A float32 tensor filled with `value`.
    public init(zeros shape: [Int], value: Float = 0) {
        self.init(uncheckedShape: shape, storage: .float32([Float](repeating: value, count: shape.reduce(1, *))))
    }

    /// A rank-0 float32 tensor.
    public init(scalar: Float) { self.init(uncheckedShape: [], storage: .float32([scalar])) }

    /// A rank-1 int64 tensor (shape arithmetic).
    public init(ints: [Int64]) { self.init(uncheckedShape: [ints.count], storage: .int64(ints)) }

    public var dtype: DType {
        switch storage {
        case .float32: return .float32
        case .int64: return .int64
        case .bool: return .bool
        }
    }

    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }

    /// The float32 elements, or a typed error naming `op` if this is not a float tensor.
    public func floats(_ op: String = "tensor") throws -> [Float] {
        guard case let .float32(a) = storage else {
            throw TensorError.dtypeMismatch(op: op, expected: "float32", got: dtype)
        }
        return a
    }

    /// The int64 elements, or a typed error naming `op`.
    public func ints(_ op: String = "tensor") throws -> [Int64] {
        guard case let .int64(a) = storage else {
            throw TensorError.dtypeMismatch(op: op, expected: "int64", got: dtype)
        }
        return a
    }

    /// The bool elements, or a typed error naming `op`.
    public func bools(_ op: String = "tensor") throws -> [Bool] {
        guard case let .bool(a) = storage else {
            throw TensorError.dtypeMismatch(op: op, expected: "bool", got: dtype)
        }
        return a
    }

    /// Elements converted to Double, whatever the dtype (tests, printing, comparisons).
    public var doubles: [Double] {
        switch storage {
        case let .float32(a): return a.map(Double.init)
        case let .int64(a): return a.map(Double.init)
        case let .bool(a): return a.map { $0 ? 1 : 0 }
        }
    }

    /// Same elements, new shape with the same element count.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        guard newShape.reduce(1, *) == count, newShape.allSatisfy({ $0 >= 0 }) else {
            throw TensorError.shapeMismatch(op: "reshape", expected: "\(count) elements in \(newShape)", got: [shape])
        }
        return Tensor(uncheckedShape: newShape, storage: storage)
    }

    /// Read-only pointer access to float32 elements. Throws if not float32.
    @inlinable
    public func withFloats<R>(_ op: String = "tensor", _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        guard case let .float32(a) = storage else {
            throw TensorError.dtypeMismatch(op: op, expected: "float32", got: dtype)
        }
        return try a.withUnsafeBufferPointer(body)
    }

    /// Creates a float32 tensor by letting `body` fill an uninitialized-then-zeroed buffer.
    @inlinable
    public static func makeFloats(shape: [Int], _ body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows -> Tensor {
        var a = [Float](repeating: 0, count: shape.reduce(1, *))
        try a.withUnsafeMutableBufferPointer { try body($0) }
        return Tensor(uncheckedShape: shape, storage: .float32(a))
    }

    /// Creates a float32 tensor whose `body` writes every element, skipping the zero fill (for
    /// large outputs, such as a 224×224 heat map, written once by a kernel).
    @inlinable
    public static func makeFloats(writingAll shape: [Int], _ body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows -> Tensor {
        let n = shape.reduce(1, *)
        let a = try [Float](unsafeUninitializedCapacity: n) { b, count in
            try body(b)
            count = n
        }
        return Tensor(uncheckedShape: shape, storage: .float32(a))
    }

    /// True if any float element is NaN or infinite (integer tensors: always false).
    public var hasNonFinite: Bool {
        guard case let .float32(a) = storage else { return false }
        return a.withUnsafeBufferPointer { p in
            guard let base = p.baseAddress else { return false }
            return loupe_all_finite(base, p.count) == 0
        }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = doubles.prefix(8).map { String(format: "%g", $0) }.joined(separator: ", ")
        return "Tensor<\(dtype)>\(shape) [\(head)\(count > 8 ? ", ..." : "")]"
    }
}
