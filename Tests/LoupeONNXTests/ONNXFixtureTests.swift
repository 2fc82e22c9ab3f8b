import LoupeGraph
import LoupeONNX
import LoupeTensor
import XCTest

/// Decodes the files written by tools/fixtures/make_onnx_io_fixtures.py (onnx 1.23.2) and checks
/// every value the generator put in.
final class ONNXFixtureTests: XCTestCase {
    func testTinyConvWithRawDataWeights() throws {
        let g = try ONNXModel.load(path: Fixtures.path("conv_raw.onnx"))
        XCTAssertEqual(g.name, "tiny_conv")
        XCTAssertEqual(g.opsets, ["": 17, "com.example": 2])
        XCTAssertEqual(g.opset, 17)
        // W is declared as a graph input too, but it has an initializer: a constant, not an input.
        XCTAssertEqual(g.inputs, [ValueInfo(name: "x", elementType: 1, shape: [.fixed(1), .fixed(1), .fixed(4), .fixed(4)])])
        XCTAssertEqual(g.outputs, [ValueInfo(name: "y", elementType: 1, shape: [.fixed(1), .fixed(32)])])
        XCTAssertEqual(g.valueInfo, [ValueInfo(name: "c", elementType: 1, shape: [.fixed(1), .fixed(2), .fixed(4), .fixed(4)])])
        XCTAssertEqual(g.metadata, [
            "ir_version": "8", "producer_name": "loupe-fixtures", "producer_version": "1.0",
            "model_version": "3", "doc_string": "tiny conv net", "author": "loupe", "license": "MIT",
        ])

        XCTAssertEqual(g.nodes.map(\.name), ["conv1", "relu1", "flatten"])
        XCTAssertEqual(g.nodes.map(\.opType), ["Conv", "Relu", "Reshape"])
        let conv = g.nodes[0]
        XCTAssertEqual(conv.inputs, ["x", "W", "B"])
        XCTAssertEqual(conv.outputs, ["c"])
        XCTAssertEqual(conv.domain, "")
        XCTAssertEqual(conv.attributes, ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])])

        XCTAssertEqual(Set(g.initializers.keys), ["W", "B", "shape"])
        let w = try XCTUnwrap(g.initializers["W"])
        XCTAssertEqual(w.shape, [2, 1, 3, 3])
        XCTAssertEqual(try w.floats(), (0..<18).map { Float($0) * Float(0.1) - Float(0.9) })
        XCTAssertEqual(g.initializers["B"], try Tensor(shape: [2], floats: [0.5, -0.25]))
        XCTAssertEqual(g.initializers["shape"], try Tensor(shape: [2], ints: [1, 32]))
    }

    func testTypedFieldsAndRawDataOfEveryElementType() throws {
        let g = try Graph(onnxFile: Fixtures.path("typed_fields.onnx"))
        func t(_ name: String) throws -> Tensor { try XCTUnwrap(g.initializers[name], name) }
        XCTAssertEqual(try t("f_float"), try Tensor(shape: [2, 2], floats: [1.5, -2.0, 0.25, 3.0]))
        XCTAssertEqual(try t("f_int64"), try Tensor(shape: [3], ints: [-7, 0, 9_000_000_000]))
        for prefix in ["f_", "r_"] {
            XCTAssertEqual(try t(prefix + "int32"), try Tensor(shape: [3], ints: [-5, 6, 2_000_000_000]), prefix)
            XCTAssertEqual(try t(prefix + "int8"), try Tensor(shape: [3], ints: [-128, 0, 127]), prefix)
            XCTAssertEqual(try t(prefix + "uint8"), try Tensor(shape: [2], ints: [0, 255]), prefix)
            XCTAssertEqual(try t(prefix + "int16"), try Tensor(shape: [2], ints: [-32768, 1234]), prefix)
            XCTAssertEqual(try t(prefix + "uint16"), try Tensor(shape: [2], ints: [65535, 7]), prefix)
            XCTAssertEqual(try t(prefix + "uint32"), try Tensor(shape: [2], ints: [4_000_000_000, 1]), prefix)
            XCTAssertEqual(try t(prefix + "bool"), try Tensor(shape: [3], bools: [true, false, true]), prefix)
            // float16: 65504 is the largest finite half, 2^-24 the smallest subnormal.
            XCTAssertEqual(try t(prefix + "float16"), try Tensor(shape: [4], floats: [1.0, -0.5, 65504, 5.9604645e-08]), prefix)
            XCTAssertEqual(try t(prefix + "bfloat16"), try Tensor(shape: [2], floats: [1.0, -3.0]), prefix)
        }
        XCTAssertEqual(try t("f_uint64"), try Tensor(shape: [1], ints: [12_345_678_901]))
        XCTAssertEqual(try t("f_double"), try Tensor(shape: [2], floats: [Float(0.1), -1e10]))
        XCTAssertEqual(try t("r_double"), try Tensor(shape: [2], floats: [-1.5, 2.25]))
        XCTAssertEqual(try t("f_scalar"), Tensor(scalar: 42))
        XCTAssertEqual(try t("f_empty"), try Tensor(shape: [0, 3], floats: []))
        XCTAssertEqual(g.initializers.count, 25)
        XCTAssertEqual(g.inputs.map(\.name), ["x"])
    }

    func testExternalDataIsReadFromBesideTheModel() throws {
        let g = try ONNXModel.load(path: Fixtures.path("external.onnx"))
        XCTAssertEqual(g.initializers["A"], try Tensor(shape: [2, 3], floats: [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]))
        XCTAssertEqual(g.initializers["B"], try Tensor(shape: [2], ints: [3, -4]))
    }

    func testIfSubgraphsDecodeIntoGraphsWithTheModelOpsets() throws {
        let g = try ONNXModel.load(path: Fixtures.path("subgraph_if.onnx"))
        XCTAssertEqual(g.inputs.map(\.name), ["cond", "x"])
        XCTAssertEqual(g.inputs[0], ValueInfo(name: "cond", elementType: 9, shape: []))
        XCTAssertEqual(g.nodes.count, 1)
        let node = g.nodes[0]
        XCTAssertEqual(node.opType, "If")
        guard case let .graph(thenBranch)? = node.attributes["then_branch"],
              case let .graph(elseBranch)? = node.attributes["else_branch"] else {
            return XCTFail("If branches should decode as graphs, got \(node.attributes)")
        }
        XCTAssertEqual(thenBranch.name, "then_branch")
        XCTAssertEqual(thenBranch.opsets, ["": 16])
        XCTAssertEqual(thenBranch.nodes.map(\.opType), ["Constant", "Mul"])
        XCTAssertEqual(thenBranch.nodes[0].attributes["value"], .tensor(Tensor(scalar: 2)))
        XCTAssertEqual(thenBranch.outputs, [ValueInfo(name: "t_out", elementType: 1, shape: [.fixed(3)])])
        XCTAssertEqual(elseBranch.nodes.map(\.inputs), [["x"]])
        XCTAssertEqual(elseBranch.inputs, [])
    }

    func testSymbolicUnknownAndMissingShapes() throws {
        let g = try ONNXModel.load(path: Fixtures.path("dim_param.onnx"))
        XCTAssertEqual(g.inputs, [ValueInfo(name: "x", elementType: 1, shape: [.symbolic("batch"), .fixed(3), .symbolic("")])])
        XCTAssertNil(g.inputs[0].staticShape)
        XCTAssertEqual(g.outputs[1], ValueInfo(name: "s", elementType: 1, shape: []))
        XCTAssertEqual(g.outputs[1].staticShape, [])
        XCTAssertEqual(g.valueInfo, [ValueInfo(name: "t", elementType: 1, shape: nil)])
        XCTAssertEqual(g.nodes[1].attributes, ["alpha": .float(0.125)])
        XCTAssertEqual(g.nodes[2].attributes, ["keepdims": .int(0)])
        let custom = g.nodes[3]
        XCTAssertEqual(custom.domain, "com.example")
        XCTAssertEqual(custom.attributes, ["mode": .string("fast"), "scales": .floats([0.5, 2.0]), "names": .strings(["a", "b"])])
        XCTAssertEqual(g.opsets, ["": 18, "com.example": 1])
    }

    func testSerializedTensorProtoFiles() throws {
        let raw = try ONNXTensor.load(path: Fixtures.path("tensor_raw.pb"))
        XCTAssertEqual(raw.name, "input_0")
        XCTAssertEqual(raw.tensor, try Tensor(shape: [2, 3], floats: [0, 0.5, 1, 1.5, 2, 2.5]))
        let typed = try ONNXTensor.decode(bytes: Fixtures.bytes("tensor_int32.pb"))
        XCTAssertEqual(typed.name, "indices")
        XCTAssertEqual(typed.tensor, try Tensor(shape: [2, 2], ints: [0, -1, 5, 2]))
    }
}
