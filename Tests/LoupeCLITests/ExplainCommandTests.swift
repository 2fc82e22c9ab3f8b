import Foundation
import XCTest
import Loupe

/// Runs the built `loupe explain` / `loupe demo` on the demo model shipped under demo/ and
/// checks the output contract (files, .npy shapes, JSON) and the one-line errors.
final class ExplainCommandTests: XCTestCase {
    var tmp: URL!
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var demo: String { Self.repo.appendingPathComponent("demo").path }
    var model: String { demo + "/model.onnx" }

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-explain-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func path(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    /// (exit status, stdout, stderr), run in `directory` (default: the temporary folder, so
    /// the demo is found through the executable's location, not the current directory).
    func loupe(_ args: [String], in directory: URL? = nil, environment: [String: String]? = nil) throws -> (Int32, String, String) {
        try CLIRunner.run(args, in: directory ?? tmp, environment: environment)
    }

    func assertOneLineError(_ r: (Int32, String, String), code: Int32, contains: [String], file: StaticString = #filePath, line: UInt = #line) {
        CLIRunner.assertOneLineError(r, code: code, contains: contains, file: file, line: line)
    }

    func json(_ p: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: p))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Captum 0.9.0 `LayerGradCam(model, model.block4[2]).attribute(x, target=3,
    /// relu_attributions=True)` on demo/images/dress.png, torchvision preprocessing, weights
    /// from demo/model.onnx (tools/demo/reference_maps.py).
    static let dressGradCAM: [Float] = [
        0.0291689932346344, 0.0, 0.0, 0.0, 0.05583428218960762, 0.08509577810764313, 0.0,
        0.0540313720703125, 0.03949495777487755, 0.15132644772529602, 0.07823590934276581, 0.17984387278556824, 0.1656293272972107, 0.014239322394132614,
        0.10956882685422897, 0.015413597226142883, 0.13923127949237823, 0.07168203592300415, 0.2125711739063263, 0.20392253994941711, 0.06946126371622086,
        0.1138644739985466, 0.06685730069875717, 0.1590476632118225, 0.0895843431353569, 0.24356438219547272, 0.19143228232860565, 0.08915989845991135,
        0.09801548719406128, 0.08198072016239166, 0.13718703389167786, 0.11086161434650421, 0.2117285281419754, 0.17055031657218933, 0.09010860323905945,
        0.05697604641318321, 0.09278440475463867, 0.14057877659797668, 0.07729186117649078, 0.12693370878696442, 0.07993204891681671, 0.06735128164291382,
        0.0, 0.06365568935871124, 0.08051932603120804, 0.022526327520608902, 0.001890275627374649, 0.013184500858187675, 0.012896943837404251,
    ]
    /// PyTorch logits of the same input.
    static let dressLogits: [Float] = [-3.09425950050354, -1.3829519748687744, -7.698834419250488, 4.354679107666016, -2.9638378620147705,
                                       -5.703951835632324, -3.5250751972198486, -5.666261672973633, -4.838534355163574, -1.2129065990447998]

    func testExplainWritesTheOutputContract() throws {
        let out = path("out")
        let r = try loupe(["explain", model, demo + "/images/dress.png", demo + "/images/bag.png",
                           "--method", "gradcam,scorecam", "--method", "eigencam", "--out", out])
        XCTAssertEqual(r.0, 0, r.2)
        XCTAssertEqual(r.2, "", "no progress when stderr is not a terminal")
        XCTAssertTrue(r.1.contains("dress.png: top Dress"), r.1)
        for stem in ["dress", "bag"] {
            for m in ["gradcam", "scorecam", "eigencam"] {
                let npy = try Tensor.readNPY(path: "\(out)/\(stem).\(m).npy")
                XCTAssertEqual(npy.shape, [1, 7, 7], "\(stem).\(m)")
                XCTAssertEqual(npy.dtype, .float32)
                XCTAssertGreaterThanOrEqual(try npy.floats().min() ?? -1, 0, "after ReLU")
                let png = try Image(contentsOfFile: "\(out)/\(stem).\(m).png")
                XCTAssertEqual([png.width, png.height, png.channels], [224, 224, 3], "28×28 input enlarged 8×")
            }
        }
        // The Grad-CAM map is Captum's LayerGradCam on the same input.
        let cam = try Tensor.readNPY(path: "\(out)/dress.gradcam.npy").floats()
        for (a, b) in zip(cam, Self.dressGradCAM) { XCTAssertEqual(a, b, accuracy: 2e-5) }

        let j = try json("\(out)/dress.json")
        XCTAssertEqual(j["inputShape"] as? [Int], [1, 1, 28, 28])
        let preds = try XCTUnwrap(j["predictions"] as? [[String: Any]])
        XCTAssertEqual(preds.count, 5)
        XCTAssertEqual(preds.first?["label"] as? String, "Dress")
        XCTAssertEqual(preds.map { $0["index"] as? Int }, [3, 9, 1, 4, 0])
        XCTAssertEqual(preds.first?["logit"] as? Double ?? 0, Double(Self.dressLogits[3]), accuracy: 1e-4)
        let probs = preds.compactMap { $0["probability"] as? Double }
        XCTAssertEqual(probs, probs.sorted(by: >))
        XCTAssertEqual(probs[0], 0.991217, accuracy: 1e-5)
        let target = try XCTUnwrap(j["target"] as? [String: Any])
        XCTAssertEqual(target["index"] as? Int, 3)
        XCTAssertEqual(target["label"] as? String, "Dress")
        let layer = try XCTUnwrap(j["layer"] as? [String: Any])
        XCTAssertEqual(layer["name"] as? String, "/block4/block4.2/Relu_output_0", "last 7×7 map before GlobalAveragePool")
        let methods = try XCTUnwrap(j["methods"] as? [[String: Any]])
        XCTAssertEqual(methods.compactMap { $0["method"] as? String }, ["gradcam", "scorecam", "eigencam"])
        for m in methods {
            XCTAssertGreaterThan(m["wallSeconds"] as? Double ?? -1, 0)
            let params = try XCTUnwrap(m["parameters"] as? [String: Any])
            XCTAssertEqual(params["layer"] as? String, "/block4/block4.2/Relu_output_0")
            XCTAssertEqual(params["target"] as? Int, 3)
            XCTAssertEqual((m["map"] as? [String: Any])?["shape"] as? [Int], [1, 7, 7])
        }
        XCTAssertEqual((methods[1]["parameters"] as? [String: Any])?["batchSize"] as? Int, 16)
        let pre = try XCTUnwrap(j["preprocess"] as? [String: Any])
        XCTAssertEqual(pre["grayscale"] as? Bool, true)
        XCTAssertEqual(pre["mean"] as? [Double], [0.286])
    }

    /// Every registered method runs; on this architecture (last feature map → global average
    /// pooling → linear) the gradient at the CAM layer is the same at every position, so
    /// Grad-CAM, XGrad-CAM and HiResCAM must give the same map.
    func testEveryMethodAndTheirAgreementOnAGAPHead() throws {
        let out = path("all")
        let all = ["gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "eigencam", "scorecam", "ablationcam", "eigengradcam", "cam"]
        let r = try loupe(["explain", model, demo + "/images/bag.png", "--method", all.joined(separator: ","),
                           "--batch-size", "5", "--format", "npy,json", "--out", out])
        XCTAssertEqual(r.0, 0, r.2)
        var maps: [String: [Float]] = [:]
        for m in all {
            let t = try Tensor.readNPY(path: "\(out)/bag.\(m).npy")
            XCTAssertEqual(t.shape, [1, 7, 7], m)
            maps[m] = try t.floats()
            XCTAssertGreaterThan(maps[m]?.max() ?? 0, 0, "\(m) map is not all zero")
        }
        for m in ["xgradcam", "hirescam"] {
            for (a, b) in zip(maps[m] ?? [], maps["gradcam"] ?? []) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b)), m) }
        }
        // CAM from the classifier weights equals Grad-CAM × h·w on a GAP + linear head.
        for (a, b) in zip(maps["cam"] ?? [], maps["gradcam"] ?? []) { XCTAssertEqual(a / 49, b, accuracy: 1e-5 * max(1, abs(b)), "cam") }
        let methods = try XCTUnwrap(try json("\(out)/bag.json")["methods"] as? [[String: Any]])
        XCTAssertEqual(methods.compactMap { $0["method"] as? String }, all)
        XCTAssertEqual((methods[6]["parameters"] as? [String: Any])?["batchSize"] as? Int, 5)
        XCTAssertEqual((methods[7]["parameters"] as? [String: Any])?["batchSize"] as? Int, 5)
    }

    /// Input-space methods: raw maps shaped like the model input; IG's attributions add up to
    /// f(x) − f(baseline) up to the reported convergence delta (completeness); Saliency is
    /// |gradient| and InputXGradient = input × gradient, so their ratio is ±input where the
    /// gradient is not zero.
    func testGradientMethodsWriteInputShapedMaps() throws {
        let out = path("grad")
        let all = ["saliency", "inputxgradient", "ig", "smoothgrad", "smoothgrad-sq", "vargrad",
                   "guidedbackprop", "deconvolution", "deeplift", "gradientshap", "guidedgradcam", "fullgrad"]
        let r = try loupe(["explain", model, demo + "/images/trouser.png", "--method", all.joined(separator: ","),
                           "--steps", "64", "--samples", "4", "--batch-size", "16", "--format", "npy,json,png", "--out", out])
        XCTAssertEqual(r.0, 0, r.2)
        for m in all {
            XCTAssertEqual(try Tensor.readNPY(path: "\(out)/trouser.\(m).npy").shape, m == "fullgrad" ? [1, 28, 28] : [1, 1, 28, 28], m)
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/trouser.\(m).png"), m)
        }
        let sal = try Tensor.readNPY(path: "\(out)/trouser.saliency.npy").floats()
        let ixg = try Tensor.readNPY(path: "\(out)/trouser.inputxgradient.npy").floats()
        XCTAssertTrue(sal.allSatisfy { $0 >= 0 })
        XCTAssertTrue(zip(sal, ixg).allSatisfy { abs($1) <= $0 * 10 + 1e-6 }, "|x·g| ≤ |g|·max|x| with |x| ≤ 10 after normalize")
        let methods = try XCTUnwrap(try json("\(out)/trouser.json")["methods"] as? [[String: Any]])
        let ig = try XCTUnwrap(methods.first { $0["method"] as? String == "ig" }?["parameters"] as? [String: Any])
        XCTAssertEqual(ig["steps"] as? Int, 64)
        let delta = try XCTUnwrap((ig["convergenceDelta"] as? [Double])?.first)
        let total = try Tensor.readNPY(path: "\(out)/trouser.ig.npy").floats().reduce(0, +)
        XCTAssertLessThan(abs(delta), 0.05 * max(1, abs(Double(total))), "64-step IG is nearly complete")
    }

    /// A method that cannot run (here Grad-CAM at a non-spatial layer) is reported in one line
    /// and with exit status 5, while the other methods' files, the JSON record (with the error
    /// under the failed method) and the report are still written.
    func testAFailingMethodDoesNotStopTheOthers() throws {
        let img = demo + "/images/dress.png", out = path("partial")
        let r = try loupe(["explain", model, img, "--method", "gradcam,saliency", "--layer", "/Flatten_output_0",
                           "--format", "npy,json,html", "--out", out])
        assertOneLineError(r, code: 5, contains: ["dress.png: gradcam", "no spatial layer"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/dress.saliency.npy"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/dress.gradcam.npy"))
        let methods = try XCTUnwrap(try json(out + "/dress.json")["methods"] as? [[String: Any]])
        XCTAssertEqual(methods.map { $0["method"] as? String }, ["gradcam", "saliency"])
        XCTAssertTrue((methods[0]["error"] as? String)?.contains("no spatial layer") == true)
        XCTAssertNil(methods[1]["error"])
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        XCTAssertTrue(html.contains("not computed"))
    }

    /// A QDQ model from onnxruntime's quantize_static: every method runs — the gradient ones
    /// through the fused fake-quantize steps (PyTorch's straight-through rule), the CAMs at the
    /// dequantized feature map before the pooling.
    func testQuantizedModelExplains() throws {
        let fixtures = Self.repo.appendingPathComponent("Tests/Fixtures/models").path
        let out = path("qdq")
        let methods = ["eigencam", "scorecam", "ablationcam", "gradcam", "saliency", "ig"]
        let r = try loupe(["explain", fixtures + "/tiny_cnn_qdq_s8.onnx", fixtures + "/tiny_cnn.input.npy",
                           "--method", methods.joined(separator: ","), "--steps", "8", "--format", "npy,json", "--out", out])
        XCTAssertEqual(r.0, 0, r.2)
        for m in methods { XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/tiny_cnn.input.\(m).npy"), m) }
        let saliency = try Tensor.readNPY(path: out + "/tiny_cnn.input.saliency.npy")
        XCTAssertTrue(try saliency.floats().contains { $0 != 0 }, "a gradient reaches the input")
    }

    /// An RGB model exported with symbolic height and width gets torchvision's 224×224
    /// evaluation recipe by default (there is no size to read from the model).
    func testSymbolicHeightAndWidthGet224() throws {
        let model = Self.repo.appendingPathComponent("Tests/Fixtures/models/tiny_resnet_block_dynhw.onnx").path
        let out = path("dynhw")
        let r = try loupe(["explain", model, demo + "/images/bag.png", "--method", "gradcam", "--format", "json", "--out", out])
        XCTAssertEqual(r.0, 0, r.2)
        let record = try json(out + "/bag.json")
        XCTAssertEqual(record["inputShape"] as? [Int], [1, 3, 224, 224])
        let pre = try XCTUnwrap(record["preprocess"] as? [String: Any])
        XCTAssertEqual(pre["crop"] as? [Int], [224, 224])
        XCTAssertEqual(pre["resize"] as? Int, 256)
    }

    /// Sample 0 of a fixture batch, written as a batch-1 .npy under the test's folder.
    func firstSample(_ fixture: String, as name: String) throws -> String {
        let batch = try Tensor.readNPY(path: fixture)
        let n = batch.count / max(1, batch.shape[0])
        let x = path(name)
        try Tensor(shape: [1] + Array(batch.shape.dropFirst()), floats: Array(try batch.floats().prefix(n))).writeNPY(path: x)
        return x
    }

    /// The default layer on a vision transformer is the last block's norm1 (tokens reshaped to
    /// the patch grid) — not an attention tensor, not a bias add, and not the final LayerNorm,
    /// whose patch tokens get no gradient from a class-token head.
    func testDefaultLayerOnAViT() throws {
        let fixtures = Self.repo.appendingPathComponent("Tests/Fixtures/cam").path
        let x = try firstSample(fixtures + "/tiny_vit.input.npy", as: "vit.npy")
        let out = path("vit")
        let r = try loupe(["explain", fixtures + "/tiny_vit.onnx", x, "--method", "gradcam", "--format", "npy,json", "--out", out])
        XCTAssertEqual(r.0, 0, r.2)
        let layer = try XCTUnwrap(try json(out + "/vit.json")["layer"] as? [String: Any])
        XCTAssertEqual(layer["name"] as? String, "/blocks.1/norm1/LayerNormalization_output_0")
        let map = try Tensor.readNPY(path: out + "/vit.gradcam.npy")
        XCTAssertEqual(map.shape, [1, 4, 4])
        XCTAssertGreaterThan(try map.floats().max() ?? 0, 0)
    }

    /// On a Swin Transformer (channels-last stages) the default layer is the final norm's
    /// permuted copy (B, C, h, w), and naming the channels-last norm itself gives the same map.
    func testDefaultLayerOnASwin() throws {
        let fixtures = Self.repo.appendingPathComponent("Tests/Fixtures/cam").path
        let x = try firstSample(fixtures + "/tiny_swin.input.npy", as: "swin.npy")
        var maps: [Tensor] = []
        for (dir, extra) in [("swin", [String]()), ("swin_norm", ["--layer", "/norm/LayerNormalization_output_0"])] {
            let out = path(dir)
            let r = try loupe(["explain", fixtures + "/tiny_swin.onnx", x, "--method", "gradcam", "--format", "npy,json", "--out", out] + extra)
            XCTAssertEqual(r.0, 0, r.2)
            let layer = try XCTUnwrap(try json(out + "/swin.json")["layer"] as? [String: Any])
            XCTAssertEqual(layer["name"] as? String, extra.last ?? "/permute/Transpose_output_0")
            let map = try Tensor.readNPY(path: out + "/swin.gradcam.npy")
            XCTAssertEqual(map.shape, [1, 4, 4])
            maps.append(map)
        }
        XCTAssertEqual(try maps[0].floats(), try maps[1].floats())
        XCTAssertGreaterThan(try maps[0].floats().max() ?? 0, 0)
    }

    /// `--format svg`: one labelled montage per input, pictures embedded, text as SVG text.
    func testSVGMontage() throws {
        let out = path("svg")
        let r = try loupe(["explain", model, demo + "/images/sandal.png", "--method", "gradcam,ig", "--format", "svg", "--out", out])
        XCTAssertEqual(r.0, 0, r.2)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out), ["sandal.montage.svg"])
        let svg = try String(contentsOfFile: out + "/sandal.montage.svg", encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg"))
        XCTAssertEqual(svg.components(separatedBy: "<image ").count - 1, 3, "input + two methods")
        for s in [">gradcam<", ">ig<", ">input<", "Sandal", "Captum IntegratedGradients", "signed maps: bwr"] {
            XCTAssertTrue(svg.contains(s), "montage mentions \(s)")
        }
        XCTAssertFalse(svg.contains("href=\"http"), "no external resources")
    }

    func testHTMLReportIsSelfContained() throws {
        let out = path("h")
        let r = try loupe(["explain", model, demo + "/images/dress.png", demo + "/images/sandal.png",
                           "--method", "gradcam,eigencam", "--format", "html", "--out", out])
        XCTAssertEqual(r.0, 0, r.2)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out), ["report.html"], "--format html writes only the page")
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        // 1 colour scale + per input: the picture and one overlay per method.
        XCTAssertEqual(html.components(separatedBy: "src=\"data:image/png;base64,").count - 1, 1 + 2 * 3)
        for s in ["gradcam", "eigencam", "Dress", "Sandal", "colour scale", "/block4/block4.2/Relu_output_0"] {
            XCTAssertTrue(html.contains(s), "report mentions \(s)")
        }
        XCTAssertFalse(html.contains("src=\"http"), "no external resources")
        XCTAssertFalse(html.contains("<script"), "no scripts")
        // The inlined overlay decodes to the same picture as the PNG file would.
        let start = try XCTUnwrap(html.range(of: "alt=\"gradcam\" src=\"data:image/png;base64,"))
        let b64 = html[start.upperBound...].prefix { $0 != "\"" }
        let png = try XCTUnwrap(Data(base64Encoded: String(b64)))
        let image = try Image(data: [UInt8](png))
        XCTAssertEqual([image.width, image.height], [224, 224])
    }

    func testTargetByLabelAndIndexAndLayerOption() throws {
        let out = path("t")
        var r = try loupe(["explain", model, demo + "/images/dress.png", "--target", "trouser", "--format", "json", "--out", out])
        XCTAssertEqual(r.0, 0, r.2)
        var t = try XCTUnwrap(try json("\(out)/dress.json")["target"] as? [String: Any])
        XCTAssertEqual(t["index"] as? Int, 1)
        XCTAssertEqual(t["label"] as? String, "Trouser")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(out)/dress.gradcam.png"), "--format json writes only JSON")

        r = try loupe(["explain", model, demo + "/images/dress.png", "--target", "8", "--layer", "/MaxPool_output_0",
                       "--format", "npy,json", "--out", out])
        XCTAssertEqual(r.0, 0, r.2)
        t = try XCTUnwrap(try json("\(out)/dress.json")["target"] as? [String: Any])
        XCTAssertEqual(t["label"] as? String, "Bag")
        XCTAssertEqual(try Tensor.readNPY(path: "\(out)/dress.gradcam.npy").shape, [1, 14, 14], "map at the named layer's resolution")
    }

    func testNPYInputGivesTheSameMapAsItsImage() throws {
        let side = try Preprocess(contentsOfFile: demo + "/model.preprocess.json")
        let x = try side(try Image(contentsOfFile: demo + "/images/dress.png"))
        let npy = path("dress-tensor.npy")
        try x.writeNPY(path: npy)
        let out = path("n")
        let r = try loupe(["explain", model, npy, "--out", out])
        XCTAssertEqual(r.0, 0, r.2)
        let cam = try Tensor.readNPY(path: "\(out)/dress-tensor.gradcam.npy").floats()
        for (a, b) in zip(cam, Self.dressGradCAM) { XCTAssertEqual(a, b, accuracy: 2e-5) }
        XCTAssertEqual((try json("\(out)/dress-tensor.json")["preprocess"] as? [String: Any])?["preset"] as? String, "none")
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/dress-tensor.gradcam.png"))
    }

    /// A colour JPEG (converted to gray by the sidecar), and a model with no sidecar (prepared
    /// from its input shape: 1 channel → grayscale, resize, crop, no normalization).
    func testJPEGInputAndModelWithoutSidecar() throws {
        let rgb = try Image(contentsOfFile: demo + "/images/dress.png").converted(toChannels: 3)
        let jpeg = path("photo.jpg")
        try rgb.write(toFile: jpeg, quality: 95)
        var r = try loupe(["explain", model, jpeg, "--format", "npy,json", "--out", path("j")])
        XCTAssertEqual(r.0, 0, r.2)
        XCTAssertEqual(try Tensor.readNPY(path: path("j") + "/photo.gradcam.npy").shape, [1, 7, 7])
        XCTAssertEqual(try json(path("j") + "/photo.json")["inputKind"] as? String, "image")

        let bare = path("bare.onnx")
        try FileManager.default.copyItem(atPath: model, toPath: bare)
        r = try loupe(["explain", bare, demo + "/images/dress.png", "--format", "json", "--out", path("b")])
        XCTAssertEqual(r.0, 0, r.2)
        let j = try json(path("b") + "/dress.json")
        XCTAssertEqual(j["inputShape"] as? [Int], [1, 1, 28, 28])
        let pre = try XCTUnwrap(j["preprocess"] as? [String: Any])
        XCTAssertTrue((pre["source"] as? String ?? "").hasPrefix("default"), "\(pre)")
        XCTAssertNil(pre["mean"])
        XCTAssertNil((j["predictions"] as? [[String: Any]])?.first?["label"] as? String, "no labels without a sidecar")
    }

    func testNoModelRunsTheDemoFromTheRepositoryRoot() throws {
        let out = path("d")
        let r = try loupe(["explain", "--method", "eigencam", "--format", "json", "--out", out], in: Self.repo)
        XCTAssertEqual(r.0, 0, r.2)
        let files = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasSuffix(".json") }
        XCTAssertEqual(files.count, 8, "one JSON per demo image: \(files)")
        // Each example image is classified as the class it is named after.
        for f in files {
            let j = try json("\(out)/\(f)")
            let top = (j["predictions"] as? [[String: Any]])?.first?["label"] as? String ?? ""
            XCTAssertEqual(top.lowercased().replacingOccurrences(of: "/", with: "-").replacingOccurrences(of: " ", with: "-") + ".json", f)
        }
        // `loupe demo` from elsewhere finds demo/ through the executable's location.
        let r2 = try loupe(["demo", "--format", "npy", "--out", path("d2")])
        XCTAssertEqual(r2.0, 0, r2.2)
        // Default methods: gradcam, ig, saliency — one map per image and method.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: path("d2")).count, 8 * 3)
        // A glob pattern the shell did not expand.
        let r3 = try loupe(["explain", model, demo + "/images/s*.png", "--format", "json", "--out", path("d3")])
        XCTAssertEqual(r3.0, 0, r3.2)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: path("d3")).sorted(), ["sandal.json", "shirt.json"])
    }

    func testBadInputsAreOneLineErrors() throws {
        let img = demo + "/images/dress.png"
        // Corrupt and truncated images.
        let garbage = path("garbage.png")
        try Data((0..<300).map { UInt8(($0 * 37 + 5) % 256) }).write(to: URL(fileURLWithPath: garbage))
        assertOneLineError(try loupe(["explain", model, garbage, "--out", path("o")]), code: 5, contains: ["garbage.png", "not a PNG or JPEG"])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: img))
        let cut = path("cut.png")
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut))
        assertOneLineError(try loupe(["explain", model, cut, "--out", path("o")]), code: 5, contains: ["cut.png", "corrupt PNG"])
        // A directory with no images.
        let empty = path("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try Data("hello".utf8).write(to: URL(fileURLWithPath: empty + "/notes.txt"))
        assertOneLineError(try loupe(["explain", model, empty, "--out", path("o")]), code: 5, contains: ["empty", "no images in directory"])
        assertOneLineError(try loupe(["explain", model, path("absent.png")]), code: 5, contains: ["absent.png", "no such file"])
        // Unknown method: every valid name listed, closest first.
        let m = try loupe(["explain", model, img, "--method", "gradcma", "--out", path("o")])
        assertOneLineError(m, code: 5, contains: ["unknown method 'gradcma'", "valid methods: gradcam, ", "scorecam", "ablationcam"])
        // Unknown layer: close names suggested.
        assertOneLineError(try loupe(["explain", model, img, "--layer", "/block4/block4.2/Relu_outpt_0", "--out", path("o")]), code: 5,
                           contains: ["no value named '/block4/block4.2/Relu_outpt_0'", "did you mean '/block4/block4.2/Relu_output_0'"])
        // Targets out of range or unknown.
        assertOneLineError(try loupe(["explain", model, img, "--target", "10", "--out", path("o")]), code: 5,
                           contains: ["--target 10 is out of range", "10 classes (0...9)"])
        assertOneLineError(try loupe(["explain", model, img, "--target=-1", "--out", path("o")]), code: 5, contains: ["out of range"])
        assertOneLineError(try loupe(["explain", model, img, "--target", "Sneakr", "--out", path("o")]), code: 5,
                           contains: ["'Sneakr' is not a label", "did you mean 'Sneaker'"])
        // A layer that is not spatial.
        assertOneLineError(try loupe(["explain", model, img, "--layer", "/Flatten_output_0", "--out", path("o")]), code: 5,
                           contains: ["/Flatten_output_0", "no spatial layer"])
        // A tensor of the wrong shape, and a bad --format.
        let wrong = path("wrong.npy")
        try Tensor(shape: [1, 3], floats: [1, 2, 3]).writeNPY(path: wrong)
        assertOneLineError(try loupe(["explain", model, wrong, "--out", path("o")]), code: 5, contains: ["'input'", "[1, 3]"])
        assertOneLineError(try loupe(["explain", model, img, "--format", "png,pdf", "--out", path("o")]), code: 5,
                           contains: ["unknown format 'pdf'", "png, npy, json, html, svg"])
        assertOneLineError(try loupe(["explain", model]), code: 5, contains: ["no input given"])
        // Nothing written for failed runs.
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("o") + "/garbage.json"))
    }
}
