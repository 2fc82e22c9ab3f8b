// swift-tools-version: 6.0
import PackageDescription

// No unsafeFlags anywhere: Loupe must be usable as a dependency by URL. Fast paths for AVX-512 /
// AVX2+FMA live in the C target CLoupeKernels with per-function `target(...)` attributes and are
// chosen at run time (see docs/kernels.md).
let package = Package(
    name: "Loupe",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Loupe", targets: ["Loupe"]),
        .executable(name: "loupe", targets: ["LoupeCLI"]),
        .executable(name: "loupe-conformance", targets: ["LoupeConformance"]),
        .executable(name: "loupe-bench", targets: ["LoupeBench"]),
        .executable(name: "loupe-explain-bench", targets: ["ExplainBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(name: "CLoupeKernels"),
        .target(name: "LoupeTensor", dependencies: ["CLoupeKernels"]),
        .target(name: "LoupeGraph", dependencies: ["LoupeTensor"]),
        .target(name: "LoupeONNX", dependencies: ["LoupeGraph"]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"]), .brew(["libpng"])]),
        .systemLibrary(name: "CJPEG", providers: [.apt(["libjpeg62-turbo-dev"]), .brew(["jpeg-turbo"])]),
        .target(name: "CImageShims", dependencies: ["CPNG", "CJPEG"], linkerSettings: [.linkedLibrary("jpeg")]),
        .target(name: "LoupeImage", dependencies: ["LoupeTensor", "CImageShims"]),
        .target(name: "LoupeExplain", dependencies: ["LoupeTensor", "LoupeGraph"]),
        .target(name: "Loupe", dependencies: ["LoupeExplain", "LoupeTensor", "LoupeGraph", "LoupeONNX", "LoupeImage"]),
        .executableTarget(
            name: "LoupeCLI",
            dependencies: ["Loupe", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "LoupeConformance", dependencies: ["Loupe"]),
        .executableTarget(name: "LoupeBench", dependencies: ["Loupe"], path: "Benchmarks/LoupeBench"),
        .executableTarget(name: "ExplainBench", dependencies: ["Loupe"], path: "Benchmarks/ExplainBench"),
        .testTarget(name: "LoupeTensorTests", dependencies: ["LoupeTensor"]),
        .testTarget(name: "LoupeGraphTests", dependencies: ["LoupeGraph", "LoupeONNX"]),
        .testTarget(name: "LoupeExplainTests", dependencies: ["LoupeExplain", "LoupeONNX"]),
        .testTarget(name: "LoupeONNXTests", dependencies: ["LoupeONNX"]),
        .testTarget(name: "LoupeCLITests", dependencies: ["LoupeCLI", "Loupe"]),
        .testTarget(name: "LoupeImageTests", dependencies: ["LoupeImage"]),
    ]
)
