import Foundation
import LoupeGraph
import LoupeONNX
import LoupeTensor
import XCTest

/// Bad input must give a typed error whose text names the file and says what is wrong.
final class ONNXErrorTests: XCTestCase {
    private func temporaryFile(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "/loupe-onnx-error-\(name)"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func loadError(_ path: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            let g = try ONNXModel.load(path: path)
            XCTFail("expected an error, loaded \(g.nodes.count) nodes", file: file, line: line)
            return ""
        } catch let error as ONNXError {
            return error.description
        } catch {
            XCTFail("expected ONNXError, got \(type(of: error)): \(error)", file: file, line: line)
            return ""
        }
    }

    private func assertContains(_ text: String, _ parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        for p in parts where !text.contains(p) {
            XCTFail("error '\(text)' should mention '\(p)'", file: file, line: line)
        }
    }

    func testNonExistentPath() {
        let path = NSTemporaryDirectory() + "/loupe-no-such-model.onnx"
        assertContains(loadError(path), [path, "no such file"])
    }

    func testEmptyFile() throws {
        let path = try temporaryFile("empty.onnx", [])
        assertContains(loadError(path), [path, "empty"])
    }

    func testTruncatedFileNamesTheOffsetAndField() throws {
        let bytes = try Fixtures.bytes("conv_raw.onnx")
        let path = try temporaryFile("truncated.onnx", Array(bytes.prefix(bytes.count / 2)))
        let text = loadError(path)
        // The cut lands inside the graph message, whose length now runs past the end.
        assertContains(text, [path, "malformed", "at byte 41", "field 'graph': length 381 runs past the end", "truncated"])
    }

    func testTruncatedInsideANestedMessage() throws {
        // Cut the graph message but fix up lengths so the damage is found inside `graph.node[0]`.
        let g = Graph(nodes: [Node(name: "n", opType: "Relu", inputs: ["x"], outputs: ["y"])])
        var bytes = try g.onnxBytes()
        // Locate the node's op_type string "Relu" and claim it is 200 bytes long.
        let relu = Array("Relu".utf8)
        let at = try XCTUnwrap((0..<(bytes.count - 4)).first { Array(bytes[$0..<($0 + 4)]) == relu })
        bytes[at - 1] = 100
        let text: String
        do { _ = try Graph(onnxBytes: bytes, fileName: "cut.onnx"); return XCTFail("expected an error") }
        catch { text = "\(error)" }
        assertContains(text, ["cut.onnx", "at byte \(at - 1)", "graph.node[0]", "field 'op_type': length 100 runs past the end"])
    }

    func testGarbageFile() throws {
        let path = try temporaryFile("garbage.onnx", Array("this is not a model at all, just some text\n".utf8))
        assertContains(loadError(path), [path, "malformed"])
        let zeros = try temporaryFile("zeros.onnx", [UInt8](repeating: 0, count: 64))
        assertContains(loadError(zeros), [zeros, "invalid field number 0"])
    }

    func testMissingExternalDataFile() {
        let path = Fixtures.path("external_missing.onnx")
        assertContains(loadError(path), [path, "tensor 'A'", "missing.bin", "not found"])
    }

    func testExternalPathEscapingTheModelDirectory() {
        let path = Fixtures.path("external_escape.onnx")
        assertContains(loadError(path), [path, "tensor 'B'", "../external.bin", "escapes the model's directory"])
    }

    func testExternalDataNeedsABaseDirectory() throws {
        do {
            _ = try Graph(onnxBytes: Fixtures.bytes("external.onnx"), baseDirectory: nil, fileName: "mem.onnx")
            XCTFail("expected an error")
        } catch let error as ONNXError {
            guard case let .externalData(file, tensor, message) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "mem.onnx")
            XCTAssertEqual(tensor, "A")
            XCTAssertTrue(message.contains("without a base directory"), message)
        }
    }

    func testRawDataOfTheWrongSize() {
        // TensorProto: dims [3] (field 1), data_type FLOAT (field 2), raw_data of 4 bytes (field 9).
        let bytes: [UInt8] = [0x08, 0x03, 0x10, 0x01, 0x42, 0x01, 0x74, 0x4A, 0x04, 0, 0, 0x80, 0x3F]
        XCTAssertThrowsError(try ONNXTensor.decode(bytes: bytes, fileName: "t.pb")) { error in
            assertContains("\(error)", ["t.pb", "at byte 0", "tensor 't'", "needs 12 bytes of raw_data, found 4"])
        }
    }

    func testTypedDataOfTheWrongCount() {
        // dims [2, 2], FLOAT, float_data packed with one value.
        let bytes: [UInt8] = [0x0A, 0x02, 0x02, 0x02, 0x10, 0x01, 0x22, 0x04, 0, 0, 0x80, 0x3F]
        XCTAssertThrowsError(try ONNXTensor.decode(bytes: bytes, fileName: "t.pb")) { error in
            assertContains("\(error)", ["t.pb", "declares 4 elements but float_data has 1"])
        }
    }

    func testStringTensorsAreUnsupported() {
        // dims [1], STRING, string_data "a".
        let bytes: [UInt8] = [0x08, 0x01, 0x10, 0x08, 0x32, 0x01, 0x61]
        XCTAssertThrowsError(try ONNXTensor.decode(bytes: bytes, fileName: "s.pb")) { error in
            guard case ONNXError.unsupported = error else { return XCTFail("\(error)") }
            assertContains("\(error)", ["s.pb", "STRING (8)"])
        }
    }

    func testHugeDimsAreRejectedBeforeAllocating() {
        // dims [2^40, 2^40] overflow Int; dims [2^40] with 4 bytes of raw data is a size mismatch.
        let big: [UInt8] = [0x80, 0x80, 0x80, 0x80, 0x80, 0x20]
        let overflow: [UInt8] = [0x08] + big + [0x08] + big + [0x10, 0x01]
        XCTAssertThrowsError(try ONNXTensor.decode(bytes: overflow)) { assertContains("\($0)", ["overflow"]) }
        let mismatch: [UInt8] = [0x08] + big + [0x10, 0x01, 0x4A, 0x04, 0, 0, 0, 0]
        XCTAssertThrowsError(try ONNXTensor.decode(bytes: mismatch)) { assertContains("\($0)", ["raw_data, found 4"]) }
    }

    func testNestingDepthIsLimited() throws {
        // Each If level nests graph → node → attribute → graph: 40 levels exceed 100 messages.
        var g = Graph(name: "leaf")
        for i in 0..<40 {
            g = Graph(name: "level\(i)", nodes: [Node(name: "if\(i)", opType: "If", inputs: ["c"], outputs: ["y"],
                                                      attributes: ["then_branch": .graph(g)])])
        }
        XCTAssertThrowsError(try Graph(onnxBytes: g.onnxBytes(), fileName: "deep.onnx")) { error in
            assertContains("\(error)", ["deep.onnx", "nested deeper than 100"])
        }
        // 20 levels are fine.
        var shallow = Graph(name: "leaf")
        for _ in 0..<20 {
            shallow = Graph(nodes: [Node(name: "if", opType: "If", inputs: ["c"], outputs: ["y"],
                                         attributes: ["then_branch": .graph(shallow)])])
        }
        XCTAssertNoThrow(try Graph(onnxBytes: shallow.onnxBytes()))
    }
}
