import Foundation
import LoupeGraph
import LoupeTensor

/// Reading and writing ONNX model files (`ModelProto`, https://onnx.ai/onnx/repo-docs/IR.html).
///
/// ```swift
/// let graph = try ONNXModel.load(path: "resnet18.onnx")
/// try graph.writeONNX(to: "copy.onnx")
/// ```
///
/// On import float16, bfloat16 and double tensors become float32, every integer type becomes
/// int64 and bool stays bool; each value's declared ONNX element type stays in ``ValueInfo``.
/// Tensors stored as external data are read from files beside the model.
public enum ONNXModel {
    /// Loads the model at `path`. External data is read relative to the model's directory.
    public static func load(path: String) throws -> Graph {
        let bytes = try readFile(path)
        let directory = (path as NSString).deletingLastPathComponent
        return try Graph(onnxBytes: bytes, baseDirectory: directory, fileName: path)
    }

    /// Reads a whole file, with an error naming it when it is missing or unreadable.
    static func readFile(_ path: String) throws -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ONNXError.io(file: path, message: "no such file")
        }
        guard !isDirectory.boolValue else { throw ONNXError.io(file: path, message: "is a directory, expected an .onnx file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ONNXError.io(file: path, message: "cannot be read (permission denied?)")
        }
        return [UInt8](data)
    }
}

extension Graph {
    /// Loads an ONNX model file; see ``ONNXModel/load(path:)``.
    public init(onnxFile path: String) throws {
        self = try ONNXModel.load(path: path)
    }

    /// Decodes a serialized `ModelProto`.
    ///
    /// - Parameters:
    ///   - baseDirectory: directory that external-data locations are relative to; nil refuses
    ///     models with external data.
    ///   - fileName: how errors name the source.
    public init(onnxBytes bytes: [UInt8], baseDirectory: String? = nil, fileName: String = "<bytes>") throws {
        let decoder = ModelDecoder(context: DecodeContext(file: fileName, baseDirectory: baseDirectory))
        self = try bytes.withUnsafeBufferPointer { try decoder.decodeModel($0) }
    }

    /// Serializes the graph as an ONNX `ModelProto`: `ir_version` (the larger of the stored
    /// `metadata["ir_version"]` and what the default-domain opset needs), `opset_import` from
    /// ``opsets``, model fields from ``metadata`` (`producer_name`, `producer_version`, `domain`,
    /// `model_version`, `doc_string`; other keys become `metadata_props`), and the graph with
    /// initializers as `raw_data`.
    public func onnxBytes() throws -> [UInt8] {
        try ModelEncoder.encodeModel(self)
    }

    /// Writes ``onnxBytes()`` to `path`.
    public func writeONNX(to path: String) throws {
        let bytes = try onnxBytes()
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        } catch {
            throw ONNXError.io(file: path, message: "cannot write: \(error.localizedDescription)")
        }
    }
}

/// A single serialized ONNX `TensorProto`, as the ONNX backend test suite stores node inputs
/// and expected outputs (`test_data_set_0/input_0.pb`).
public enum ONNXTensor {
    /// Decodes a `TensorProto`, returning its name (may be empty) and value converted to Loupe
    /// storage (float types → float32, integers → int64, bool → bool).
    ///
    /// - Parameter baseDirectory: directory for external data, if the tensor uses it.
    public static func decode(bytes: [UInt8], fileName: String = "<bytes>",
                              baseDirectory: String? = nil) throws -> (name: String, tensor: Tensor) {
        let context = DecodeContext(file: fileName, baseDirectory: baseDirectory)
        return try bytes.withUnsafeBufferPointer { buffer in
            var r = ProtoReader(buffer: buffer, file: fileName, path: "")
            return try r.readTensor(context)
        }
    }

    /// Reads and decodes a `TensorProto` file (`input_0.pb`).
    public static func load(path: String) throws -> (name: String, tensor: Tensor) {
        let bytes = try ONNXModel.readFile(path)
        return try decode(bytes: bytes, fileName: path, baseDirectory: (path as NSString).deletingLastPathComponent)
    }

    /// Serializes `tensor` as a `TensorProto` with `raw_data` (FLOAT, INT64 or BOOL).
    public static func encode(_ tensor: Tensor, name: String = "") -> [UInt8] {
        var w = ProtoWriter()
        ModelEncoder.encodeTensor(tensor, name: name, into: &w)
        return w.bytes
    }
}
