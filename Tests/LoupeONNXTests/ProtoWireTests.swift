import LoupeONNX
import LoupeTensor
import XCTest

/// Wire-format corner cases, through the smallest public message (`TensorProto`).
/// Field numbers: dims = 1, data_type = 2, int64_data = 7, name = 8, float_data = 4.
final class ProtoWireTests: XCTestCase {
    static let minusOne: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]

    func testPackedAndUnpackedRepeatedFieldsDecodeAlike() throws {
        let header: [UInt8] = [0x08, 0x03, 0x10, 0x07]  // dims [3], INT64
        // Unpacked: one tag per element (key 0x38 = field 7, varint), -1 as a 10-byte varint.
        let unpacked = header + [0x38, 0x05] + [0x38] + Self.minusOne + [0x38, 0xAC, 0x02]
        // Packed: one length-delimited run (key 0x3A = field 7, length-delimited).
        let packedBody: [UInt8] = [0x05] + Self.minusOne + [0xAC, 0x02]
        let packed = header + [0x3A, UInt8(packedBody.count)] + packedBody
        // Mixed: a packed run followed by an unpacked element continues the same list.
        let mixed = header + [0x3A, 0x01, 0x05] + [0x38] + Self.minusOne + [0x38, 0xAC, 0x02]
        for bytes in [unpacked, packed, mixed] {
            XCTAssertEqual(try ONNXTensor.decode(bytes: bytes).tensor, Tensor(ints: [5, -1, 300]))
        }
    }

    func testUnknownFieldsOfEveryWireTypeAreSkipped() throws {
        let unknown: [UInt8] = [
            0xF8, 0x06, 0x96, 0x01,              // field 111, varint 150
            0xF9, 0x06, 1, 2, 3, 4, 5, 6, 7, 8,  // field 111, 64-bit
            0xFA, 0x06, 0x02, 0xAA, 0xBB,        // field 111, length-delimited
            0xFD, 0x06, 1, 2, 3, 4,              // field 111, 32-bit
        ]
        // dims [1], FLOAT, float_data 2.0 (unpacked, key 0x25 = field 4, 32-bit), name "n".
        let bytes = unknown + [0x08, 0x01, 0x10, 0x01] + unknown + [0x25, 0, 0, 0, 0x40, 0x42, 0x01, 0x6E] + unknown
        let (name, tensor) = try ONNXTensor.decode(bytes: bytes)
        XCTAssertEqual(name, "n")
        XCTAssertEqual(tensor, try Tensor(shape: [1], floats: [2]))
    }

    func testWireLevelErrors() {
        func message(_ bytes: [UInt8]) -> String {
            do { _ = try ONNXTensor.decode(bytes: bytes, fileName: "w.pb"); return "no error" } catch { return "\(error)" }
        }
        let cases: [([UInt8], String)] = [
            ([0x08] + [UInt8](repeating: 0xFF, count: 11), "at byte 1: varint longer than"),
            ([0x08, 0x80], "at byte 1: varint runs past the end"),
            ([0xFB, 0x06], "field 111 uses the start-group wire type"),  // unknown field, group
            ([0x0F], "invalid wire type 7"),
            ([0x25, 0, 0], "32-bit value needs 4 bytes, 2 left"),  // float_data cut short
            ([0x22, 0x03, 0, 0, 0], "packed field 'float_data' has 3 bytes, not a multiple of 4"),
            ([0x12, 0x00], "field 'data_type' has wire type length-delimited, expected varint"),
            ([0x42, 0x05, 0x61], "field 'name': length 5 runs past the end"),
        ]
        for (bytes, expected) in cases {
            let text = message(bytes)
            XCTAssertTrue(text.hasPrefix("w.pb: malformed ONNX protobuf"), text)
            XCTAssertTrue(text.contains(expected), "'\(text)' should contain '\(expected)'")
        }
    }
}
