/// What a deployment came to.
public enum DeploymentOutcome: Sendable, Equatable {
    /// Every instance is up and healthy; the images each variant runs.
    case succeeded(images: [String: [DeployedImage]])
    /// The deployment could not be brought up; the reason is shown as the endpoint's `FailureReason`.
    case failed(reason: String)
}

/// Turns an endpoint's desired deployment into running instances. The control plane drives it; the supervisor
/// implements it.
public protocol InstanceReconciler: Sendable {
    /// Brings the endpoint's instances to `spec` and returns once they are all healthy or the deployment failed.
    /// Instances of the previous deployment keep serving until the new ones are healthy; after a failure they are
    /// still the ones that run.
    func deploy(endpoint: String, generation: Int, spec: DeploymentSpec) async -> DeploymentOutcome
    /// Stops every instance of the endpoint and returns when none is left.
    func tearDown(endpoint: String) async
}
