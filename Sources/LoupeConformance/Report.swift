import Foundation

enum Report {
    /// Prints the per-operator table, the unsupported list and the closing line; returns the
    /// exit status (1 if any unexpected failure).
    static func node(_ results: [NodeSuite.Result]) -> Int32 {
        var perOp: [String: (pass: Int, fail: Int, known: Int)] = [:]
        var unsupportedOps: [String: Int] = [:]
        var failures: [(String, String)] = []
        var passed = 0, failed = 0, known = 0, unsupported = 0
        for r in results {
            switch r.outcome {
            case .passed:
                passed += 1
                for o in r.ops { perOp[o, default: (0, 0, 0)].pass += 1 }
            case let .failed(why):
                failed += 1
                failures.append((r.name, why))
                for o in r.ops { perOp[o, default: (0, 0, 0)].fail += 1 }
            case .knownFailure:
                known += 1
                for o in r.ops { perOp[o, default: (0, 0, 0)].known += 1 }
            case let .unsupported(ops):
                unsupported += 1
                for o in ops { unsupportedOps[o, default: 0] += 1 }
            }
        }
        print("ONNX backend node tests, per supported operator:")
        print("op".padding(toLength: 28, withPad: " ", startingAt: 0) + "  pass  fail  known")
        for (op, c) in perOp.sorted(by: { $0.key < $1.key }) {
            print(op.padding(toLength: 28, withPad: " ", startingAt: 0)
                  + String(format: "  %4d  %4d  %5d", c.pass, c.fail, c.known))
        }
        print("\nUnsupported operators (\(unsupportedOps.count), \(unsupported) tests not run):")
        print(unsupportedOps.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: ", "))
        if known > 0 {
            print("\nKnown failures (\(known)):")
            for r in results { if case let .knownFailure(why) = r.outcome { print("  \(r.name): \(why)") } }
        }
        if !failures.isEmpty {
            print("\nFailures:")
            for (n, why) in failures { print("  \(n): \(why)") }
        }
        print("\n\(passed) passed, \(failed) failed, \(known + unsupported) skipped")
        return failed == 0 ? 0 : 1
    }
}
