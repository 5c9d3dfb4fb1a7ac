// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "strait",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "strait", targets: ["strait"]),
        // For the Benchmarks package (request signing).
        .library(name: "StraitAuth", targets: ["StraitAuth"]),
        // For the Benchmarks package (XGBoost prediction against XGBoost's C API).
        .library(name: "StraitXGBoost", targets: ["StraitXGBoost"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // The system SQLite (libsqlite3-dev); StraitStore wraps the few calls it needs.
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        // zlib (zlib1g-dev), to unpack model.tar.gz archives.
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "StraitCore"),
        .target(name: "StraitStore", dependencies: ["StraitCore", "CSQLite"]),
        // libcrypto (libssl-dev), for SHA-256 without a heap object per hash.
        .systemLibrary(
            name: "CLibcrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]
        ),
        .target(name: "StraitAuth", dependencies: ["StraitCore", "CLibcrypto"]),
        .target(
            name: "StraitControlPlane",
            dependencies: [
                "StraitCore", "StraitStore", "StraitAuth",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "StraitSupervisor",
            dependencies: [
                "StraitCore", "StraitStore", "StraitAuth", "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "StraitDataPlane",
            dependencies: [
                "StraitCore", "StraitAuth",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // XGBoost models: loading (JSON, UBJSON), prediction, SageMaker XGBoost payloads. No NIO.
        .target(name: "StraitXGBoost", dependencies: ["StraitCore"]),
        // The EC2 API subset (VPCs, subnets, security groups, interface endpoints) and private DNS. No NIO.
        .target(name: "StraitNetwork", dependencies: ["StraitCore", "StraitStore"]),
        .target(
            name: "StraitRuntimes",
            dependencies: [
                "StraitXGBoost",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "StraitServer",
            dependencies: [
                "StraitCore", "StraitStore", "StraitAuth", "StraitControlPlane", "StraitDataPlane", "StraitSupervisor",
                "StraitRuntimes", "StraitNetwork",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "strait",
            dependencies: [
                "StraitServer", "StraitRuntimes", "StraitCore", "StraitAuth",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .target(name: "StraitTestSupport", dependencies: ["StraitCore", "StraitStore"]),
        .testTarget(name: "StraitCoreTests", dependencies: ["StraitCore", "StraitTestSupport"]),
        .testTarget(name: "StraitStoreTests", dependencies: ["StraitStore", "StraitTestSupport"]),
        .testTarget(
            name: "StraitAuthTests",
            dependencies: [
                "StraitAuth", "StraitCore", "StraitTestSupport",
            ]
        ),
        .testTarget(name: "StraitNetworkTests", dependencies: ["StraitNetwork", "StraitCore", "StraitStore"]),
        .testTarget(name: "StraitXGBoostTests", dependencies: ["StraitXGBoost", "StraitCore"]),
        .testTarget(name: "StraitServerTests", dependencies: ["StraitServer", "StraitCore"]),
        .testTarget(
            name: "StraitDataPlaneTests",
            dependencies: [
                "StraitDataPlane", "StraitCore", "StraitAuth", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "StraitSupervisorTests",
            dependencies: [
                "StraitSupervisor", "StraitCore", "StraitTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "StraitControlPlaneTests",
            dependencies: [
                "StraitControlPlane", "StraitTestSupport", "StraitAuth", "StraitCore", "StraitStore",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)

for target in package.targets where target.type != .system {
    target.swiftSettings =
        (target.swiftSettings ?? []) + [
            .swiftLanguageMode(.v6),
            .enableUpcomingFeature("ExistentialAny"),
            .enableUpcomingFeature("MemberImportVisibility"),
            .enableUpcomingFeature("InternalImportsByDefault"),
        ]
}
