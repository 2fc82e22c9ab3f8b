import Foundation
import XCTest

/// Runs the built `loupe` executable and checks its output, for the CLI test classes.
enum CLIRunner {
    /// (exit status, stdout, stderr) of `loupe args`, run in `directory`.
    static func run(_ args: [String], in directory: URL, environment: [String: String]? = nil) throws -> (Int32, String, String) {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var bin = exe.appendingPathComponent("loupe")
        if !FileManager.default.fileExists(atPath: bin.path) {
            // xctest bundles sit one level below the products directory on some platforms.
            bin = exe.deletingLastPathComponent().appendingPathComponent("loupe")
        }
        let p = Process()
        p.executableURL = bin
        p.arguments = args
        p.currentDirectoryURL = directory
        if let environment {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, b in b }
        }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// Bad input must give exactly one `loupe: error: ...` line on stderr, exit `code`, and
    /// mention each of `contains`.
    static func assertOneLineError(_ r: (Int32, String, String), code: Int32, contains: [String],
                                   file: StaticString, line: UInt) {
        XCTAssertEqual(r.0, code, "exit status; stderr: \(r.2)", file: file, line: line)
        let lines = r.2.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one line on stderr, got: \(r.2)", file: file, line: line)
        XCTAssertTrue(r.2.hasPrefix("loupe: error: "), r.2, file: file, line: line)
        for c in contains { XCTAssertTrue(r.2.contains(c), "stderr should mention \(c): \(r.2)", file: file, line: line) }
    }
}
