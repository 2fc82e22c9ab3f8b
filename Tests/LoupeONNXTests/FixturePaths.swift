import Foundation

/// Locates `Tests/Fixtures/onnx` from this source file, so tests need no bundled resources.
enum Fixtures {
    static let root: String = {
        let here = URL(fileURLWithPath: #filePath)  // Tests/LoupeONNXTests/FixturePaths.swift
        return here.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures").appendingPathComponent("onnx").path
    }()

    static func path(_ name: String) -> String { root + "/" + name }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name))))
    }
}
