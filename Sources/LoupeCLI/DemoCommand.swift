import ArgumentParser
import Foundation
import Loupe

/// `loupe demo`: `loupe explain` on the demo model and its example images.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Explain the bundled demo classifier (Fashion-MNIST CNN) on its example images.",
        discussion: """
        Same as `loupe explain` with no model argument. The demo files are looked up as
        described under `loupe explain --help` (\(DemoFiles.lookupSummary)).
        """
    )

    @OptionGroup var options: ExplainOptions

    func run() throws {
        try CLIFailure.run {
            let demo = try DemoFiles.locate()
            try ExplainRunner(options: options, modelPath: demo.model, inputs: [demo.images], isDemo: true).run()
        }
    }
}

/// Where the demo model lives. The repository ships it under `demo/` at its root:
/// `model.onnx`, `model.preprocess.json`, `labels.txt`, `images/`.
enum DemoFiles {
    static let lookupSummary = "$LOUPE_DEMO_DIR, then ./demo, then a demo/ folder next to the loupe executable or in one of its parent folders, then ../share/loupe/demo beside the executable"

    /// The first folder holding `model.onnx`, in this order:
    /// 1. `$LOUPE_DEMO_DIR`;
    /// 2. `demo/` in the current directory (the README runs from the repository root);
    /// 3. `demo/` in the executable's folder or any of its parents (a build in
    ///    `.build/debug/loupe` finds the repository's `demo/` three levels up);
    /// 4. `../share/loupe/demo` relative to the executable (an installed layout).
    static func candidates() -> [String] {
        var out: [String] = []
        if let env = ProcessInfo.processInfo.environment["LOUPE_DEMO_DIR"], !env.isEmpty { out.append(env) }
        out.append(FileManager.default.currentDirectoryPath + "/demo")
        var dir = executableURL().deletingLastPathComponent()
        for _ in 0..<8 {
            out.append(dir.appendingPathComponent("demo").path)
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { break }
            dir = parent
        }
        out.append(executableURL().deletingLastPathComponent().appendingPathComponent("../share/loupe/demo").standardized.path)
        return out
    }

    static func executableURL() -> URL {
        if let p = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return URL(fileURLWithPath: p)
        }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
    }

    static func locate() throws -> (model: String, images: String) {
        for dir in candidates() where FileManager.default.fileExists(atPath: dir + "/model.onnx") {
            return (dir + "/model.onnx", dir + "/images")
        }
        throw CLIError("demo model not found (looked for model.onnx in \(lookupSummary)); run from the repository root or set LOUPE_DEMO_DIR")
    }
}
