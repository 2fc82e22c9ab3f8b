import Foundation
import XCTest
import LoupeTensor
@testable import LoupeGraph

/// Every operator in the table, built from random inputs (ranks 0–4, sizes 0–3, float/int64/bool)
/// and hostile attribute values, compiled and run: each must succeed or throw, never trap.
/// Backward is exercised too where forward succeeds.
final class OperatorFuzzTests: XCTestCase {
    static let intAttributes = ["axis", "keepdims", "group", "blocksize", "k", "to", "upper", "exclusive", "reverse",
                                "largest", "sorted", "select_last_index", "noop_with_empty_axes", "ceil_mode",
                                "count_include_pad", "storage_order", "transA", "transB", "allowzero", "start", "end",
                                "num_outputs", "batch_dims", "fmod", "detect_negative", "detect_positive", "stash_type",
                                "p", "axis_w"]
    static let intsAttributes = ["axes", "perm", "pads", "strides", "kernel_shape", "dilations", "split", "output_padding",
                                 "output_shape", "shape", "repeats", "starts", "ends"]
    static let floatAttributes = ["alpha", "beta", "gamma", "epsilon", "min", "max", "bias", "lambd", "momentum", "ratio",
                                  "extrapolation_value", "cubic_coeff_a"]
    static let stringAttributes = ["mode", "auto_pad", "coordinate_transformation_mode", "nearest_mode", "approximate",
                                   "reduction", "equation", "direction"]
    static let hostileInts = [-1, 0, 1, 2, 3, -5, 1 << 20, 1 << 40, Int.max, Int.min]
    static let strings = ["", "constant", "reflect", "edge", "wrap", "nearest", "linear", "cubic", "DCR", "CRD",
                          "SAME_UPPER", "VALID", "NOTSET", "half_pixel", "align_corners", "asymmetric", "tanh", "none",
                          "add", "mul", "max", "ij,jk->ik", "i", "->", "...", "ii->i", "bad"]

    /// Cases per operator; LOUPE_FUZZ_TRIALS raises it for a deeper local run.
    static let trials = Int(ProcessInfo.processInfo.environment["LOUPE_FUZZ_TRIALS"] ?? "") ?? 60

    func testEveryOperatorSurvivesHostileInputs() throws {
        var rng = TestRNG(seed: 2024)
        var ran = 0
        let ops = OperatorTable.supported
        for op in ops {
            for _ in 0..<Self.trials {
                let nIn = 1 + Int(rng.next() % 3)
                var inputs: [Tensor] = []
                for _ in 0..<nIn { inputs.append(randomTensor(&rng)) }
                var attrs: [String: Attribute] = [:]
                for _ in 0..<Int(rng.next() % 4) {
                    switch rng.next() % 4 {
                    case 0: attrs[pick(Self.intAttributes, &rng)] = .int(pick(Self.hostileInts, &rng))
                    case 1:
                        let n = Int(rng.next() % 5)
                        attrs[pick(Self.intsAttributes, &rng)] = .ints((0..<n).map { _ in pick(Self.hostileInts, &rng) })
                    case 2: attrs[pick(Self.floatAttributes, &rng)] = .float([Float.nan, -1, 0, 1e30, 0.5][Int(rng.next() % 5)])
                    default: attrs[pick(Self.stringAttributes, &rng)] = .string(pick(Self.strings, &rng))
                    }
                }
                let names = (0..<nIn).map { "x\($0)" }
                let graph = Graph(nodes: [Node(name: "n", opType: op, inputs: names, outputs: ["y"], attributes: attrs)],
                                  inputs: zip(names, inputs).map { ValueInfo(name: $0, elementType: $1.dtype == .float32 ? 1 : $1.dtype == .int64 ? 7 : 9) },
                                  outputs: [ValueInfo(name: "y", elementType: 0)],
                                  opsets: ["": [11, 13, 17, 18, 21][Int(rng.next() % 5)]])
                guard let model = try? Model(graph: graph) else { continue }
                let feeds = Dictionary(uniqueKeysWithValues: zip(names, inputs))
                guard let pass = try? model.forward(feeds, recording: .gradient, allowNonFinite: true),
                      let y = pass.outputs["y"] else { continue }
                ran += 1
                if y.dtype == .float32 {
                    _ = try? pass.backward(seeds: ["y": Tensor(zeros: y.shape, value: 1)], wrt: names)
                }
            }
        }
        XCTAssertGreaterThan(ran, ops.count, "most operators must run on some of the random cases")
    }

    func pick<T>(_ a: [T], _ rng: inout TestRNG) -> T { a[Int(rng.next() % UInt64(a.count))] }

    func randomTensor(_ rng: inout TestRNG) -> Tensor {
        let rank = Int(rng.next() % 5)
        let shape = (0..<rank).map { _ in Int(rng.next() % 4) }
        let n = shape.reduce(1, *)
        switch rng.next() % 4 {
        case 0: return (try? Tensor(shape: shape, ints: (0..<n).map { _ in Int64(Int(rng.next() % 7) - 3) })) ?? Tensor(scalar: 0)
        case 1: return (try? Tensor(shape: shape, bools: (0..<n).map { _ in rng.next() % 2 == 0 })) ?? Tensor(scalar: 0)
        default: return rng.tensor(shape, -2, 2)
        }
    }
}
