import Foundation
import LoupeImage
import LoupeTensor
import XCTest

/// Paths of Tests/Fixtures/images (written by tools/fixtures/make_image_fixtures.py).
enum Fixtures {
    static let directory: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/images").path

    static func path(_ name: String) -> String { directory + "/" + name }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name))))
    }

    static func image(_ name: String) throws -> Image { try Image(contentsOfFile: path(name)) }

    /// An integer .npy (uint8 HWC samples) as bytes.
    static func samples(_ name: String) throws -> [UInt8] {
        try Tensor.readNPY(path: path(name)).ints().map { UInt8($0) }
    }

    static let photos = ["chelsea", "astronaut", "coffee"]
}

/// Largest |a - b| over two equal-length sample arrays, and how many differ.
func sampleDifference(_ a: [UInt8], _ b: [UInt8]) -> (max: Int, count: Int) {
    precondition(a.count == b.count)
    var m = 0, n = 0
    for i in 0..<a.count {
        let d = abs(Int(a[i]) - Int(b[i]))
        m = max(m, d)
        if d > 0 { n += 1 }
    }
    return (m, n)
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
    return m
}
