import Foundation
import Loupe

/// `DIR/report.html`: one self-contained page (every image inlined as a base64 PNG, no
/// scripts, no external files) with, per input, the picture the model saw, its top-k
/// predictions and every method's overlay, plus the colour scale.
struct ExplainReport {
    struct MethodEntry {
        var name: String
        var reference: String
        var overlay: Image?
        var min: Float
        var max: Float
        var shape: [Int]
        var seconds: Double
        /// Why the method could not run (then there is no map).
        var error: String? = nil
    }

    struct InputEntry {
        var path: String
        var picture: Image?
        var predictions: [TopPredictions.Entry]
        var target: String
        var layer: String
        var methods: [MethodEntry]
    }

    var modelPath: String
    var colormap: Colormap
    /// Colormap of signed maps (input-space relevance): the diverging one unless the user chose one for all.
    var signedColormap: Colormap? = nil
    var alpha: Float
    var entries: [InputEntry] = []

    func html() throws -> String {
        var h = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>Loupe explanations</title>
        <style>
        body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;background:#fafafa}
        h1{font-size:22px;margin:0 0 4px} .sub{color:#666;font-size:13px;margin-bottom:16px}
        .scale{display:flex;align-items:center;gap:8px;font-size:13px;margin:8px 0 20px}
        .scale img{height:14px;width:256px;image-rendering:pixelated;border:1px solid #ccc}
        .input{background:#fff;border:1px solid #ddd;border-radius:8px;padding:14px;margin-bottom:18px}
        .input h2{font-size:16px;margin:0 0 10px;word-break:break-all}
        .row{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
        figure{margin:0;text-align:center;font-size:13px} figure img{width:224px;height:224px;image-rendering:pixelated;border:1px solid #ccc;display:block}
        figcaption{margin-top:4px;line-height:1.35} .muted{color:#777;font-size:12px}
        table{border-collapse:collapse;font-size:13px;min-width:220px} td{padding:2px 6px}
        .bar{background:#4c78a8;height:10px;display:inline-block;vertical-align:middle}
        .target td{font-weight:600}
        </style></head><body>
        <h1>Loupe explanations</h1>
        <div class="sub">model <code>\(esc(modelPath))</code> · \(entries.count) input(s)</div>

        """
        let bar = try colormap.colorBar(width: 256, height: 1)
        h += "<div class=\"scale\">colour scale (\(esc(colormap.rawValue)), each map scaled to its own range: <span>low (min)</span>"
            + "<img alt=\"colour scale\" src=\"\(try dataURI(bar))\"><span>high (max)</span></div>\n"
        if let signedColormap, signedColormap != colormap {
            let signedBar = try signedColormap.colorBar(width: 256, height: 1)
            h += "<div class=\"scale\">signed maps (\(esc(signedColormap.rawValue))), scaled by their largest |value|: <span>negative</span>"
                + "<img alt=\"signed colour scale\" src=\"\(try dataURI(signedBar))\"><span>positive</span> (white = 0)</div>\n"
        }
        for e in entries {
            h += "<section class=\"input\"><h2>\(esc(e.path))</h2><div class=\"row\">\n"
            if let p = e.picture {
                h += "<figure><img alt=\"input\" src=\"\(try dataURI(p))\"><figcaption>input (as the model sees it)</figcaption></figure>\n"
            }
            h += "<table><tr><th colspan=\"3\" style=\"text-align:left\">top \(e.predictions.count)</th></tr>\n"
            for p in e.predictions {
                let name = p.label ?? "class \(p.index)"
                let cls = name == e.target || "class \(p.index)" == e.target ? " class=\"target\"" : ""
                h += "<tr\(cls)><td>\(esc(name))</td><td>\(String(format: "%.3f", p.probability))</td>"
                    + "<td><span class=\"bar\" style=\"width:\(Int((p.probability * 120).rounded()))px\"></span></td></tr>\n"
            }
            h += "<tr><td colspan=\"3\" class=\"muted\">explained: \(esc(e.target))\(e.layer.isEmpty ? "" : "<br>layer: \(esc(e.layer))")</td></tr></table>\n"
            for m in e.methods {
                if let error = m.error {
                    h += "<figure><div class=\"muted\">not computed</div><figcaption><b>\(esc(m.name))</b><br>"
                        + "<span class=\"muted\">\(esc(m.reference))<br>error: \(esc(error))</span></figcaption></figure>\n"
                    continue
                }
                let img = try m.overlay.map { "<img alt=\"\(esc(m.name))\" src=\"\(try dataURI($0))\">" } ?? "<div class=\"muted\">(no picture for this input)</div>"
                h += "<figure>\(img)<figcaption><b>\(esc(m.name))</b><br><span class=\"muted\">\(esc(m.reference))<br>"
                    + "map \(m.shape.map(String.init).joined(separator: "×")), range \(fmt(m.min))…\(fmt(m.max)), \(String(format: "%.3f", m.seconds)) s</span></figcaption></figure>\n"
            }
            h += "</div></section>\n"
        }
        h += "<div class=\"sub\">Overlays: map bilinearly upsampled, min–max scaled, blended with opacity \(alpha). Raw maps are in the .npy files.</div>\n</body></html>\n"
        return h
    }

    func write(to path: String) throws {
        do { try Data(try html().utf8).write(to: URL(fileURLWithPath: path)) } catch let e as ImageError { throw CLIError("\(e)") } catch {
            throw CLIError("\(path): cannot write: \(error.localizedDescription)")
        }
    }

    private func dataURI(_ image: Image) throws -> String { try Markup.dataURI(image) }
    private func fmt(_ v: Float) -> String { Markup.number(v) }
    private func esc(_ s: String) -> String { Markup.escape(s) }
}
