public import Foundation

/// The endpoint lifecycle as a pure state machine.
///
/// Each event is a mutating method that changes the record and returns what the owner must do next. The machine
/// does no I/O; time comes in as an argument. Transitions follow SageMaker's:
/// `Creating → InService | Failed`, `InService → Updating → InService` (an update that fails leaves the old fleet
/// in service and sets `FailureReason`), any state but `Deleting → Deleting → gone`, and on `Failed` only delete.
public struct EndpointLifecycle: Sendable {
    /// What the owner does after an event.
    public enum Action: Sendable, Equatable {
        /// Bring the instances to this deployment; report the outcome with this generation.
        case deploy(generation: Int, spec: DeploymentSpec)
        /// Stop every instance of the endpoint, then report `tearDownFinished`.
        case tearDown
        /// Delete the record: the endpoint is gone.
        case removeRecord
        case none
    }

    public private(set) var record: EndpointRecord

    public init(_ record: EndpointRecord) { self.record = record }

    /// A new endpoint record in `Creating`, and the deployment to start.
    public static func create(
        name: String,
        arn: String,
        spec: DeploymentSpec,
        now: Date
    ) -> (EndpointLifecycle, Action) {
        let record = EndpointRecord(
            name: name,
            arn: arn,
            configName: spec.configName,
            status: .creating,
            creationTime: now,
            lastModifiedTime: now,
            deployment: spec,
            variants: spec.variants.map {
                VariantState(
                    name: $0.name,
                    currentWeight: $0.weight,
                    desiredWeight: $0.weight,
                    currentInstanceCount: 0,
                    desiredInstanceCount: $0.instanceCount,
                    deployedImages: []
                )
            },
            generation: 1
        )
        return (EndpointLifecycle(record), .deploy(generation: 1, spec: spec))
    }

    /// UpdateEndpoint: deploy another endpoint config on a new fleet.
    public mutating func updateRequested(spec: DeploymentSpec, now: Date) throws(ServiceError) -> Action {
        try requireInService(operation: "update")
        record.status = .updating
        record.failureReason = nil
        record.pending = spec
        record.generation += 1
        record.lastModifiedTime = now
        for index in record.variants.indices {
            if let variant = spec.variants.first(where: { $0.name == record.variants[index].name }) {
                record.variants[index].desiredWeight = variant.weight
                record.variants[index].desiredInstanceCount = variant.instanceCount
            }
        }
        return .deploy(generation: record.generation, spec: spec)
    }

    /// UpdateEndpointWeightsAndCapacities: new weights or instance counts for named variants.
    public mutating func weightsAndCapacitiesRequested(
        _ changes: [(variant: String, weight: Double?, instanceCount: Int?)],
        now: Date
    ) throws(ServiceError) -> Action {
        try requireInService(operation: "update")
        let known = Set(record.deployment.variants.map(\.name))
        let unknown = changes.map(\.variant).filter { !known.contains($0) }
        guard unknown.isEmpty else {
            throw .validation(
                "The variant name(s) \"\(unknown.joined(separator: ", "))\" is/are not present within endpoint configuration \"\(record.configName)\"."
            )
        }
        var spec = record.deployment
        for change in changes {
            guard let index = spec.variants.firstIndex(where: { $0.name == change.variant }) else { continue }
            if let weight = change.weight { spec.variants[index].weight = weight }
            if let count = change.instanceCount { spec.variants[index].instanceCount = count }
        }
        return try updateRequested(spec: spec, now: now)
    }

    /// DeleteEndpoint: allowed in `InService`, `Failed` and `OutOfService`; refused while a deployment runs, with
    /// the wording SageMaker uses for it.
    public mutating func deleteRequested(now: Date) throws(ServiceError) -> Action {
        switch record.status {
        case .inService, .failed, .outOfService, .updateRollbackFailed:
            record.status = .deleting
            record.lastModifiedTime = now
            record.pending = nil
            record.generation += 1
            return .tearDown
        default:
            throw .validation("Cannot update in-progress endpoint \"\(record.arn)\".")
        }
    }

    /// The reconciler brought every instance of deployment `generation` up and healthy.
    public mutating func deploymentSucceeded(generation: Int, images: [String: [DeployedImage]], now: Date) -> Action {
        guard generation == record.generation,
            record.status == .creating || record.status == .updating
                || record.status == .systemUpdating
        else { return .none }
        let spec = record.target
        record.deployment = spec
        record.pending = nil
        record.configName = spec.configName
        // A recovery keeps the reason an interrupted update left; any other success clears it.
        if record.status != .systemUpdating { record.failureReason = nil }
        record.status = .inService
        record.lastModifiedTime = now
        record.variants = spec.variants.map { variant in
            VariantState(
                name: variant.name,
                currentWeight: variant.weight,
                desiredWeight: variant.weight,
                currentInstanceCount: variant.instanceCount,
                desiredInstanceCount: variant.instanceCount,
                deployedImages: images[variant.name] ?? []
            )
        }
        return .none
    }

    /// The reconciler could not bring deployment `generation` up. A new endpoint fails; a failed update leaves the
    /// previous fleet in service with the reason recorded, as SageMaker does.
    public mutating func deploymentFailed(generation: Int, reason: String, now: Date) -> Action {
        guard generation == record.generation else { return .none }
        let reason = String(reason.prefix(1024))
        switch record.status {
        case .creating, .systemUpdating:
            record.status = .failed
            record.failureReason = reason
            record.lastModifiedTime = now
            return .none
        case .updating:
            let previous = record.deployment
            record.pending = nil
            record.status = .inService
            record.failureReason = reason
            record.lastModifiedTime = now
            for index in record.variants.indices {
                if let variant = previous.variants.first(where: { $0.name == record.variants[index].name }) {
                    record.variants[index].desiredWeight = variant.weight
                    record.variants[index].desiredInstanceCount = variant.instanceCount
                }
            }
            return .none
        default:
            return .none
        }
    }

    /// The reconciler stopped every instance of a deleted endpoint.
    public mutating func tearDownFinished() -> Action {
        record.status == .deleting ? .removeRecord : .none
    }

    /// `strait serve` started again: nothing runs yet. Returns what to do to bring the endpoint back.
    public mutating func recovered(now: Date) -> Action {
        switch record.status {
        case .deleting:
            return .tearDown
        case .failed, .outOfService, .updateRollbackFailed:
            return .none
        case .inService, .systemUpdating, .rollingBack:
            record.status = .systemUpdating
            record.pending = nil
        case .updating:
            // The old fleet stopped with the server; bring it back rather than the update, whose failure would
            // otherwise "fall back" to instances that no longer run.
            if let pending = record.pending {
                record.failureReason =
                    "The update to endpoint configuration \(pending.configName) was interrupted by a restart of strait serve; the endpoint runs \(record.deployment.configName). Call UpdateEndpoint again."
            }
            record.status = .systemUpdating
            record.pending = nil
            for index in record.variants.indices {
                if let variant = record.deployment.variants.first(where: { $0.name == record.variants[index].name }) {
                    record.variants[index].desiredWeight = variant.weight
                    record.variants[index].desiredInstanceCount = variant.instanceCount
                }
            }
        case .creating:
            break
        }
        record.generation += 1
        return .deploy(generation: record.generation, spec: record.target)
    }

    private func requireInService(operation: String) throws(ServiceError) {
        switch record.status {
        case .inService:
            return
        case .failed:
            throw .validation(
                "Cannot \(operation) endpoint \"\(record.arn)\" because it is in status Failed. DeleteEndpoint is the only operation allowed on a failed endpoint."
            )
        default:
            throw .validation("Cannot \(operation) in-progress endpoint \"\(record.arn)\".")
        }
    }
}
