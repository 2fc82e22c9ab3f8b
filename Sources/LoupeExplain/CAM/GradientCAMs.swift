import LoupeTensor

extension CAM {
    /// CAM (Zhou et al. 2016, "Learning Deep Features for Discriminative Localization"): for a
    /// network ending in global average pooling and one linear layer `logits = W·GAP(A) + b`,
    /// the weights of class `k` are the row `W[k, :]`. Needs no gradients.
    public struct ClassifierWeights: CAMWeighting {
        /// (classes, C) weight matrix of the linear layer after global average pooling
        /// (ONNX Gemm with transB = 1 stores it this way; PyTorch `fc.weight`).
        public let weight: Tensor
        public init(weight: Tensor) { self.weight = weight }
        public var usesGradients: Bool { false }

        public func readout(activations: Tensor, gradients: Tensor?, classes: [Int]) throws -> CAMReadout {
            let d = try CAMDims(activations, "CAM activations")
            guard weight.rank == 2, weight.shape[1] == d.c else {
                throw CAMError.shapeMismatch(what: "CAM classifier weight", expected: "(classes, \(d.c))", got: weight.shape)
            }
            guard classes.count == d.b else { throw CAMError.badTarget("\(classes.count) classes for a batch of \(d.b)") }
            let w = try weight.floats()
            var out = [Float](repeating: 0, count: d.b * d.c)
            for (n, k) in classes.enumerated() {
                guard k >= 0, k < weight.shape[0] else { throw CAMError.badTarget("class \(k) outside 0..<\(weight.shape[0])") }
                for ch in 0..<d.c { out[n * d.c + ch] = w[k * d.c + ch] }
            }
            return .channelWeights(try Tensor(shape: [d.b, d.c], floats: out))
        }
    }

    /// Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391): `w[b,c] = mean_ij G[b,c,i,j]`.
    public struct GradCAM: CAMWeighting {
        public init() {}
        public var usesGradients: Bool { true }
        public func readout(activations: Tensor, gradients: Tensor?, classes: [Int]) throws -> CAMReadout {
            let (d, _, g) = try CAMDims.pair(activations, gradients, needGradients: true)
            let s = CAM.spatialSums(g ?? [], d)
            return .channelWeights(try Tensor(shape: [d.b, d.c], floats: s.map { Float($0 / Double(d.hw)) }))
        }
    }

    /// Grad-CAM++ (Chattopadhyay et al. 2018, arXiv:1710.11063, eq. 19 with the exponential
    /// closed form): `α = G² / (2G² + (Σ_ij A)·G³ + 1e-6)`, zero where `G = 0`;
    /// `w[b,c] = Σ_ij ReLU(G)·α`. The ε and the zeroing follow pytorch-grad-cam 1.5.7.
    public struct GradCAMPlusPlus: CAMWeighting {
        public init() {}
        public var usesGradients: Bool { true }
        public func readout(activations: Tensor, gradients: Tensor?, classes: [Int]) throws -> CAMReadout {
            let (d, a, gOpt) = try CAMDims.pair(activations, gradients, needGradients: true)
            let g = gOpt ?? []
            let sumA = CAM.spatialSums(a, d)
            var out = [Float](repeating: 0, count: d.b * d.c)
            for k in 0..<(d.b * d.c) {
                let s = Float(sumA[k])
                var acc = 0.0
                for i in 0..<d.hw {
                    let gi = g[k * d.hw + i]
                    guard gi != 0 else { continue }
                    let g2 = gi * gi, g3 = g2 * gi
                    let alpha = g2 / (2 * g2 + s * g3 + 1e-6)
                    acc += Double(max(gi, 0) * alpha)
                }
                out[k] = Float(acc)
            }
            return .channelWeights(try Tensor(shape: [d.b, d.c], floats: out))
        }
    }

    /// XGrad-CAM (Fu et al. 2020, arXiv:2008.02312): `w[b,c] = Σ_ij G·A / (Σ_ij A + 1e-7)`.
    public struct XGradCAM: CAMWeighting {
        public init() {}
        public var usesGradients: Bool { true }
        public func readout(activations: Tensor, gradients: Tensor?, classes: [Int]) throws -> CAMReadout {
            let (d, a, gOpt) = try CAMDims.pair(activations, gradients, needGradients: true)
            let g = gOpt ?? []
            let sumA = CAM.spatialSums(a, d)
            var out = [Float](repeating: 0, count: d.b * d.c)
            for k in 0..<(d.b * d.c) {
                var acc = 0.0
                for i in 0..<d.hw { acc += Double(g[k * d.hw + i]) * Double(a[k * d.hw + i]) }
                out[k] = Float(acc / (sumA[k] + 1e-7))
            }
            return .channelWeights(try Tensor(shape: [d.b, d.c], floats: out))
        }
    }

    /// HiRes-CAM (Draelos & Carin 2020, arXiv:2011.08891): the map `Σ_c G⊙A`, the gradient
    /// not averaged over space. When each channel's gradient is constant over space it equals
    /// Grad-CAM exactly (the mean of a constant is that constant).
    public struct HiResCAM: CAMWeighting {
        public init() {}
        public var usesGradients: Bool { true }
        public func readout(activations: Tensor, gradients: Tensor?, classes: [Int]) throws -> CAMReadout {
            let (d, a, g) = try CAMDims.pair(activations, gradients, needGradients: true)
            return .map(CAM.channelSum(d, a, g ?? [], positiveGradient: false))
        }
    }

    /// Layer-CAM (Jiang et al. 2021, IEEE TIP 30:5875): the map `Σ_c ReLU(G)⊙A`.
    public struct LayerCAM: CAMWeighting {
        public init() {}
        public var usesGradients: Bool { true }
        public func readout(activations: Tensor, gradients: Tensor?, classes: [Int]) throws -> CAMReadout {
            let (d, a, g) = try CAMDims.pair(activations, gradients, needGradients: true)
            return .map(CAM.channelSum(d, a, g ?? [], positiveGradient: true))
        }
    }

    /// `out[b,i,j] = Σ_c A·G` (or `Σ_c A·ReLU(G)`).
    static func channelSum(_ d: CAMDims, _ a: [Float], _ g: [Float], positiveGradient: Bool) -> Tensor {
        Tensor.makeFloats(shape: [d.b, d.h, d.w]) { out in
            a.withUnsafeBufferPointer { ap in
                g.withUnsafeBufferPointer { gp in
                    for n in 0..<d.b {
                        for ch in 0..<d.c {
                            let base = (n * d.c + ch) * d.hw
                            if positiveGradient {
                                for p in 0..<d.hw { out[n * d.hw + p] += ap[base + p] * max(gp[base + p], 0) }
                            } else {
                                for p in 0..<d.hw { out[n * d.hw + p] += ap[base + p] * gp[base + p] }
                            }
                        }
                    }
                }
            }
        }
    }
}
