import Foundation
import XCTest
import Loupe

/// Runs the built `loupe` executable and checks bad input gives one clear line on stderr and a
/// distinct non-zero exit code — never a crash or trap.
final class CLIErrorTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    /// (exit status, stdout, stderr)
    func loupe(_ args: [String]) throws -> (Int32, String, String) { try CLIRunner.run(args, in: tmp) }

    func path(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    /// y = Relu(x), x: float32 [1, 3]
    func reluModel(op: String = "Relu") throws -> String {
        let g = Graph(nodes: [Node(name: "act", opType: op, inputs: ["x"], outputs: ["y"])],
                      inputs: [ValueInfo(name: "x", elementType: 1, shape: [.symbolic("batch"), .fixed(3)])],
                      outputs: [ValueInfo(name: "y", elementType: 1, shape: [.symbolic("batch"), .fixed(3)])])
        let p = path("\(op).onnx")
        try g.writeONNX(to: p)
        return p
    }

    func assertOneLineError(_ r: (Int32, String, String), code: Int32, contains: [String], file: StaticString = #filePath, line: UInt = #line) {
        CLIRunner.assertOneLineError(r, code: code, contains: contains, file: file, line: line)
    }

    func testMissingFile() throws {
        assertOneLineError(try loupe(["inspect", path("nope.onnx")]), code: 3, contains: ["nope.onnx", "no such file"])
    }

    func testGarbageAndTruncatedModels() throws {
        let garbage = path("garbage.onnx")
        try Data((0..<200).map { UInt8(($0 * 73 + 11) % 256) }).write(to: URL(fileURLWithPath: garbage))
        assertOneLineError(try loupe(["inspect", garbage]), code: 3, contains: ["garbage.onnx"])
        let good = try reluModel()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let cut = path("truncated.onnx")
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut))
        assertOneLineError(try loupe(["run", cut, "--input", "x.npy"]), code: 3, contains: ["truncated.onnx"])
    }

    func testMissingAndEscapingExternalData() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/onnx").path
        assertOneLineError(try loupe(["inspect", "\(fixtures)/external_missing.onnx"]), code: 3,
                           contains: ["external_missing.onnx", "external data"])
        assertOneLineError(try loupe(["inspect", "\(fixtures)/external_escape.onnx"]), code: 3,
                           contains: ["external_escape.onnx"])
        // The good one loads, with its weights read from external.bin beside it.
        let r = try loupe(["inspect", "\(fixtures)/external.onnx"])
        XCTAssertEqual(r.0, 0, r.2)
    }

    func testUnknownOperatorIsNamed() throws {
        let m = try reluModel(op: "FancyNewOp")
        let x = path("x.npy")
        try Tensor(shape: [1, 3], floats: [1, -2, 3]).writeNPY(path: x)
        assertOneLineError(try loupe(["run", m, "--input", x]), code: 4, contains: ["FancyNewOp.onnx: unsupported operator: FancyNewOp (ai.onnx opset 17) at act"])
        // inspect still describes the model and lists the operator up front.
        let r = try loupe(["inspect", m])
        XCTAssertEqual(r.0, 0, r.2)
        XCTAssertTrue(r.1.contains("unsupported operators (1)"), r.1)
        XCTAssertTrue(r.1.contains("FancyNewOp"), r.1)
    }

    func testWrongInputShapeDtypeAndNaN() throws {
        let m = try reluModel()
        let bad = path("bad.npy")
        try Tensor(shape: [1, 4], floats: [1, 2, 3, 4]).writeNPY(path: bad)
        assertOneLineError(try loupe(["run", m, "--input", bad]), code: 5, contains: ["'x'", "[batch, 3]", "[1, 4]"])
        let ints = path("ints.npy")
        try Tensor(shape: [1, 3], ints: [1, 2, 3]).writeNPY(path: ints)
        assertOneLineError(try loupe(["run", m, "--input", ints]), code: 5, contains: ["'x'", "float32", "int64"])
        let nan = path("nan.npy")
        try Tensor(shape: [1, 3], floats: [1, .nan, 3]).writeNPY(path: nan)
        assertOneLineError(try loupe(["run", m, "--input", nan]), code: 5, contains: ["'x'", "NaN"])
        assertOneLineError(try loupe(["run", m, "--input", path("absent.npy")]), code: 5, contains: ["absent.npy"])
    }

    func testRunPrintsOutputAndWritesNPY() throws {
        let m = try reluModel()
        let x = path("x.npy"), y = path("y.npy")
        try Tensor(shape: [2, 3], floats: [1, -2, 3, -4, 5, -6]).writeNPY(path: x)
        let r = try loupe(["run", m, "--input", x, "--output", y, "--top", "2"])
        XCTAssertEqual(r.0, 0, r.2)
        XCTAssertTrue(r.1.contains("y: float32 [2, 3]"), r.1)
        XCTAssertTrue(r.1.contains("[1] class 1"), r.1)
        XCTAssertEqual(try Tensor.readNPY(path: y).floats(), [1, 0, 3, 0, 5, 0])
    }
}
