import Foundation
public import StraitCore
import Synchronization

/// An in-memory `InstanceReconciler` for control-plane tests: starts nothing, records every call, and answers each
/// deployment with the outcome its `outcome` closure gives (by default success, with each variant's image deployed
/// as itself).
public final class StubReconciler: InstanceReconciler {
    /// One `deploy` call as the reconciler received it.
    public struct Deployment: Sendable, Equatable {
        public let endpoint: String
        public let generation: Int
        public let spec: DeploymentSpec
    }

    public typealias Outcome =
        @Sendable (_ endpoint: String, _ generation: Int, _ spec: DeploymentSpec) async ->
        DeploymentOutcome

    private struct State {
        var deployments: [Deployment] = []
        var tearDowns: [String] = []
    }

    private let state = Mutex(State())
    private let outcome: Outcome

    public init(outcome: @escaping Outcome = StubReconciler.succeedAll) {
        self.outcome = outcome
    }

    /// Succeeds every deployment; each variant's image resolves to itself at the Unix epoch.
    public static let succeedAll: Outcome = { _, _, spec in
        .succeeded(images: StubReconciler.images(for: spec))
    }

    /// Fails every deployment with `reason`.
    public static func failAll(reason: String) -> Outcome {
        { _, _, _ in .failed(reason: reason) }
    }

    /// The deployed images a successful deployment of `spec` reports.
    public static func images(for spec: DeploymentSpec) -> [String: [DeployedImage]] {
        Dictionary(
            spec.variants.map { variant in
                (
                    variant.name,
                    [
                        DeployedImage(
                            specifiedImage: variant.image,
                            resolvedImage: variant.image,
                            resolutionTime: .init(timeIntervalSince1970: 0)
                        )
                    ]
                )
            },
            uniquingKeysWith: { first, _ in first }
        )
    }

    public func deploy(endpoint: String, generation: Int, spec: DeploymentSpec) async -> DeploymentOutcome {
        state.withLock { $0.deployments.append(Deployment(endpoint: endpoint, generation: generation, spec: spec)) }
        return await outcome(endpoint, generation, spec)
    }

    public func tearDown(endpoint: String) async {
        state.withLock { $0.tearDowns.append(endpoint) }
    }

    /// Every deployment requested so far, in order.
    public var deployments: [Deployment] { state.withLock { $0.deployments } }

    /// Every endpoint torn down so far, in order.
    public var tearDowns: [String] { state.withLock { $0.tearDowns } }
}
