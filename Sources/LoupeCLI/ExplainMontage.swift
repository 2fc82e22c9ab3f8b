import Foundation
import Loupe

/// `--format svg`: one labelled montage per input, `DIR/<stem>.montage.svg` — the input and
/// every method's overlay side by side, each captioned with the method, its reference
/// implementation and its value range. SVG keeps the text sharp at any size without a bitmap
/// font; the pictures are embedded PNGs, so the file stands alone.
enum ExplainMontage {
    static func svg(_ entry: ExplainReport.InputEntry, colormap: Colormap, signedColormap: Colormap?) throws -> String {
        let tile = 224, gap = 16, caption = 54, header = 58
        var pictures: [(Image, [String])] = []
        if let p = entry.picture { pictures.append((p, ["input", "as the model sees it"])) }
        for m in entry.methods {
            guard let o = m.overlay else { continue }
            pictures.append((o, [m.name, m.reference, "range \(fmt(m.min)) … \(fmt(m.max))"]))
        }
        let columns = max(1, min(4, pictures.count))
        let rows = (pictures.count + columns - 1) / columns
        let width = gap + columns * (tile + gap)
        let height = header + rows * (tile + caption + gap) + 40
        let best = entry.predictions.first.map { "\($0.label ?? "class \($0.index)") \(String(format: "%.3f", $0.probability))" } ?? "-"
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
        <rect width="100%" height="100%" fill="#ffffff"/>
        <text x="\(gap)" y="24" font-size="17" font-weight="bold">\(esc((entry.path as NSString).lastPathComponent))</text>
        <text x="\(gap)" y="44" font-size="13" fill="#333">top: \(esc(best)) · explained: \(esc(entry.target))\(entry.layer.isEmpty ? "" : " · layer \(esc(entry.layer))")</text>

        """
        for (i, (image, lines)) in pictures.enumerated() {
            let x = gap + (i % columns) * (tile + gap)
            let y = header + (i / columns) * (tile + caption + gap)
            let uri = try Markup.dataURI(image)
            s += "<image x=\"\(x)\" y=\"\(y)\" width=\"\(tile)\" height=\"\(tile)\" preserveAspectRatio=\"xMidYMid meet\" image-rendering=\"pixelated\" href=\"\(uri)\"/>\n"
            for (k, line) in lines.enumerated() {
                let size = k == 0 ? 14 : 11
                s += "<text x=\"\(x + tile / 2)\" y=\"\(y + tile + 16 + k * 15)\" font-size=\"\(size)\" text-anchor=\"middle\"\(k == 0 ? " font-weight=\"bold\"" : " fill=\"#555\"")>\(esc(line))</text>\n"
            }
        }
        let legendY = height - 22
        s += "<text x=\"\(gap)\" y=\"\(legendY)\" font-size=\"11\" fill=\"#555\">unsigned maps: \(colormap.rawValue), low → high"
            + (signedColormap.map { "; signed maps: \($0.rawValue), blue negative, white 0, red positive" } ?? "")
            + "; each map scaled to its own range; raw values in the .npy files</text>\n</svg>\n"
        return s
    }

    private static func fmt(_ v: Float) -> String { Markup.number(v) }
    private static func esc(_ s: String) -> String { Markup.escape(s) }
}
