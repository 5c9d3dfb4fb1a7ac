// swift-tools-version:6.1
import PackageDescription

// Strait's benchmarks: built and run by scripts/bench, never by the test suite.
let package = Package(
    name: "strait-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "strait", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        .executableTarget(
            name: "strait-bench",
            dependencies: [
                .product(name: "StraitAuth", package: "strait"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
)
