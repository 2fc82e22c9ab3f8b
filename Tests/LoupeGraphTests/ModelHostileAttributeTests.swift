import Foundation
import XCTest
import LoupeTensor
import LoupeONNX
@testable import LoupeGraph

final class ModelHostileAttributeTests: XCTestCase {
    /// Every int/ints/float attribute of every node set to hostile values (negative, zero, huge,
    /// overflowing) and every constant integer tensor corrupted the same way: compile and run
    /// must throw or succeed — factories and kernels validate what they are given.
    func testHostileAttributeValues() throws {
        let dir = ModelFixtureTests.dir
        let hostile: [Int] = [-1, 0, -7, 3, 1 << 31, -(1 << 40), Int.max, Int.min]
        for name in ["tiny_cnn", "tiny_transformer", "tiny_resnet_block"] {
            let graph = try ONNXModel.load(path: "\(dir)/\(name).onnx")
            let x = try Tensor.readNPY(path: "\(dir)/\(name).input.npy")
            var tried = 0
            func attempt(_ g: Graph) {
                tried += 1
                guard let m = try? Model(graph: g), let input = m.inputs.first else { return }
                _ = try? m.run([input.name: x])
            }
            for (ni, node) in graph.nodes.enumerated() {
                for (key, value) in node.attributes {
                    for h in hostile {
                        var g = graph
                        switch value {
                        case .int: g.nodes[ni].attributes[key] = .int(h)
                        case let .ints(v) where !v.isEmpty:
                            var w = v; w[abs(h % v.count)] = h; g.nodes[ni].attributes[key] = .ints(w)
                        case .float: g.nodes[ni].attributes[key] = .float(Float(h))
                        case let .tensor(t) where t.dtype == .int64 && t.count > 0:
                            var w = (try? t.ints()) ?? []; w[abs(h % w.count)] = Int64(h)
                            g.nodes[ni].attributes[key] = .tensor((try? Tensor(shape: t.shape, ints: w)) ?? t)
                        default: continue
                        }
                        attempt(g)
                    }
                }
            }
            for (k, t) in graph.initializers where t.dtype == .int64 && t.count > 0 {
                for h in hostile {
                    var g = graph
                    var w = (try? t.ints()) ?? []; w[abs(h % w.count)] = Int64(h)
                    g.initializers[k] = try Tensor(shape: t.shape, ints: w)
                    attempt(g)
                }
            }
            XCTAssertGreaterThan(tried, 40, name)
        }
    }
}
