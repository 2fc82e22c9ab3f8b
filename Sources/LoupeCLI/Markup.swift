import Foundation
import Loupe

/// Small helpers shared by the HTML report and the SVG montage.
enum Markup {
    /// Escapes text for HTML/SVG content and attribute values.
    static func escape(_ s: String) -> String {
        var o = ""
        for c in s {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            default: o.append(c)
            }
        }
        return o
    }

    /// A map value for captions: 3 decimals, or 3 significant digits for large/tiny values.
    static func number(_ v: Float) -> String {
        String(format: abs(v) >= 100 || (abs(v) < 0.01 && v != 0) ? "%.3g" : "%.3f", v)
    }

    /// The image as an inline `data:` URI (PNG), so the page needs no other files.
    static func dataURI(_ image: Image) throws -> String {
        "data:image/png;base64," + Data(try image.pngData()).base64EncodedString()
    }
}
