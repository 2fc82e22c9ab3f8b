// swift-tools-version: 6.0
// A stand-alone package that uses Loupe the way an application would: as a remote dependency
// by URL. SwiftPM rejects URL dependencies whose targets use unsafeFlags, so building this proves
// Loupe has none. run.sh fills in the URL and revision of a fresh clone; it is not part of the
// main package (SwiftPM builds only declared targets).
import PackageDescription

let package = Package(
    name: "DependencyCheck",
    dependencies: [
        .package(url: "__LOUPE_URL__", revision: "__LOUPE_REVISION__"),
    ],
    targets: [
        .executableTarget(name: "DependencyCheck", dependencies: [.product(name: "Loupe", package: "Loupe")]),
    ]
)
