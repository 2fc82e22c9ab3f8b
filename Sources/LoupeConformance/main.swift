import Foundation
import Loupe

// loupe-conformance: ONNX backend node tests and model agreement checks.
//
//   loupe-conformance node .conformance/node [--known-failures FILE] [--verbose]
//   loupe-conformance models .models
//
// Prints a per-operator table and a closing `N passed, M failed` line; exits non-zero when a
// test of a supported operator fails unexpectedly.

func usage() -> Never {
    FileHandle.standardError.write(Data("""
    usage: loupe-conformance node DIR [--known-failures FILE] [--verbose]
           loupe-conformance models DIR [--tolerance 1e-4]

    """.utf8))
    exit(2)
}

var args = Array(CommandLine.arguments.dropFirst())
guard args.count >= 2 else { usage() }
let mode = args.removeFirst()
let dir = args.removeFirst()
var knownFile: String?
var verbose = false
var tolerance = 1e-4
while !args.isEmpty {
    let a = args.removeFirst()
    switch a {
    case "--known-failures": knownFile = args.isEmpty ? nil : args.removeFirst()
    case "--verbose": verbose = true
    case "--tolerance": tolerance = Double(args.isEmpty ? "" : args.removeFirst()) ?? 1e-4
    default: usage()
    }
}

switch mode {
case "node":
    var known: [String: String] = [:]
    if let knownFile {
        guard let text = try? String(contentsOfFile: knownFile, encoding: .utf8) else {
            FileHandle.standardError.write(Data("cannot read known-failures file \(knownFile)\n".utf8)); exit(2)
        }
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let parts = line.split(separator: " ", maxSplits: 1)
            known[String(parts[0])] = parts.count > 1 ? String(parts[1]) : "known failure"
        }
    }
    guard FileManager.default.fileExists(atPath: dir) else {
        FileHandle.standardError.write(Data("no node tests at \(dir): run tools/onnx_conformance/prepare.py first\n".utf8)); exit(2)
    }
    let results = NodeSuite(directory: dir, knownFailures: known, verbose: verbose).run()
    exit(Report.node(results))
case "models":
    exit(ModelAgreement(directory: dir, tolerance: tolerance).run())
default:
    usage()
}
