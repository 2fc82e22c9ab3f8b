import ArgumentParser
import Foundation
import Loupe

@main
struct LoupeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loupe",
        abstract: "Look inside neural networks: run, differentiate and explain ONNX models.",
        subcommands: [InspectCommand.self, RunCommand.self, ExplainCommand.self, DemoCommand.self]
    )
}

/// Turns any error into one line on stderr and a distinct exit code, so scripts can tell
/// a bad model from bad input. Every subcommand's `run` goes through this.
enum CLIFailure {
    static func exitCode(for error: Error) -> Int32 {
        switch error {
        case let e as InFile: return exitCode(for: e.underlying)
        case let e as MethodFailure:
            // A method that does not apply to this model or layer is a bad argument, like before.
            return e.underlying is CAMError || e.underlying is ExplainError ? 5 : exitCode(for: e.underlying)
        case is ONNXError: return 3
        case let g as GraphError:
            switch g {
            case .unsupportedOperators: return 4
            case .missingInput, .inputMismatch, .nonFiniteInput, .unknownValue: return 5
            default: return 6
            }
        case is TensorError: return 5
        case is CLIError: return 5
        default: return 1
        }
    }

    static func run(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let e as ExitCode {
            throw e
        } catch {
            FileHandle.standardError.write(Data("loupe: error: \(error)\n".utf8))
            throw ExitCode(exitCode(for: error))
        }
    }
}

/// A method of `loupe explain` that failed on one input while the other methods ran.
struct MethodFailure: Error, CustomStringConvertible {
    var input: String
    var method: String
    var underlying: Error
    var description: String {
        let reason = "\(underlying)"
        // Some methods' own errors already start with the method's name.
        return "\(input): \(method): " + (reason.hasPrefix("\(method): ") ? String(reason.dropFirst(method.count + 2)) : reason)
    }
}

/// Errors of the command line itself (arguments that parse but make no sense).
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// An error about a model, prefixed with the model's file so the one line names it.
struct InFile: Error, CustomStringConvertible {
    var file: String
    var underlying: Error
    var description: String { "\(file): \(underlying)" }

    /// Loads and compiles a model; graph errors are reported with the file name.
    static func loadModel(_ path: String) throws -> Model {
        let graph = try ONNXModel.load(path: path)  // ONNX errors already name the file
        do { return try Model(graph: graph) } catch { throw InFile(file: path, underlying: error) }
    }
}
