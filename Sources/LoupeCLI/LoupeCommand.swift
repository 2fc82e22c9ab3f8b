import ArgumentParser
import Loupe

@main
struct LoupeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loupe",
        abstract: "Look inside neural networks: run, differentiate and explain ONNX models.",
        subcommands: []
    )
}
