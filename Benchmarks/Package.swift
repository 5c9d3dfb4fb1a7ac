// swift-tools-version:6.1
import PackageDescription

// Strait's benchmarks: built and run by scripts/bench and scripts/bench-xgboost, never by the test suite.
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
        ),
        // Strait's XGBoost prediction against XGBoost's C API (loaded with dlopen); run by scripts/bench-xgboost.
        .executableTarget(
            name: "strait-xgboost-bench",
            dependencies: [
                .product(name: "StraitXGBoost", package: "strait"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
