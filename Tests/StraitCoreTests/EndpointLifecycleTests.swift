import Foundation
import StraitCore
import StraitTestSupport
import Testing

@Suite("EndpointLifecycle")
struct EndpointLifecycleTests {
    let name = "My-Endpoint"
    let arn = Fixtures.account.arn(.endpoint, "My-Endpoint")
    let spec = Fixtures.deployment(
        config: "config-1",
        variants: [
            Fixtures.variant("A", image: "image-a:1", instanceCount: 2, weight: 3),
            Fixtures.variant("B", image: "image-b:1", instanceCount: 1, weight: 1),
        ]
    )
    let newSpec = Fixtures.deployment(
        config: "config-2",
        variants: [
            Fixtures.variant("A", image: "image-a:2", instanceCount: 4, weight: 1),
            Fixtures.variant("B", image: "image-b:2", instanceCount: 3, weight: 2),
        ]
    )
    let images: [String: [DeployedImage]] = [
        "A": [
            DeployedImage(
                specifiedImage: "image-a:1",
                resolvedImage: "image-a@sha256:aa",
                resolutionTime: Fixtures.time(5)
            )
        ],
        "B": [
            DeployedImage(
                specifiedImage: "image-b:1",
                resolvedImage: "image-b@sha256:bb",
                resolutionTime: Fixtures.time(5)
            )
        ],
    ]

    // MARK: Helpers

    func created() -> EndpointLifecycle {
        EndpointLifecycle.create(name: name, arn: arn, spec: spec, now: Fixtures.time(0)).0
    }

    func inService() -> EndpointLifecycle {
        var lifecycle = created()
        _ = lifecycle.deploymentSucceeded(generation: 1, images: images, now: Fixtures.time(10))
        return lifecycle
    }

    func failed() -> EndpointLifecycle {
        var lifecycle = created()
        _ = lifecycle.deploymentFailed(generation: 1, reason: "image pull failed", now: Fixtures.time(10))
        return lifecycle
    }

    func updating() throws -> EndpointLifecycle {
        var lifecycle = inService()
        _ = try lifecycle.updateRequested(spec: newSpec, now: Fixtures.time(20))
        return lifecycle
    }

    /// A lifecycle whose record is in `status`, built directly.
    func lifecycle(in status: EndpointStatus, generation: Int = 3) -> EndpointLifecycle {
        EndpointLifecycle(
            Fixtures.endpoint(
                name,
                status: status,
                spec: spec,
                pending: status == .updating ? newSpec : nil,
                generation: generation
            )
        )
    }

    // MARK: Create

    @Test("create starts in Creating and deploys generation 1")
    func create() {
        let (lifecycle, action) = EndpointLifecycle.create(name: name, arn: arn, spec: spec, now: Fixtures.time(0))
        #expect(action == .deploy(generation: 1, spec: spec))
        let record = lifecycle.record
        #expect(record.name == name)
        #expect(record.arn == arn)
        #expect(record.status == .creating)
        #expect(record.configName == "config-1")
        #expect(record.generation == 1)
        #expect(record.deployment == spec)
        #expect(record.pending == nil)
        #expect(record.target == spec)
        #expect(record.failureReason == nil)
        #expect(record.creationTime == Fixtures.time(0))
        #expect(record.lastModifiedTime == Fixtures.time(0))
        #expect(record.variants.map(\.name) == ["A", "B"])
        #expect(record.variants.map(\.currentInstanceCount) == [0, 0])
        #expect(record.variants.map(\.desiredInstanceCount) == [2, 1])
        #expect(record.variants.map(\.desiredWeight) == [3, 1])
        #expect(record.variants.allSatisfy { $0.deployedImages.isEmpty })
    }

    @Test("a successful first deployment brings the endpoint InService with current counts, weights and images")
    func createSucceeds() {
        var lifecycle = created()
        let action = lifecycle.deploymentSucceeded(generation: 1, images: images, now: Fixtures.time(10))
        #expect(action == .none)
        let record = lifecycle.record
        #expect(record.status == .inService)
        #expect(record.failureReason == nil)
        #expect(record.lastModifiedTime == Fixtures.time(10))
        #expect(record.creationTime == Fixtures.time(0))
        #expect(record.deployment == spec)
        #expect(record.pending == nil)
        #expect(
            record.variants == [
                VariantState(
                    name: "A",
                    currentWeight: 3,
                    desiredWeight: 3,
                    currentInstanceCount: 2,
                    desiredInstanceCount: 2,
                    deployedImages: images["A"]!
                ),
                VariantState(
                    name: "B",
                    currentWeight: 1,
                    desiredWeight: 1,
                    currentInstanceCount: 1,
                    desiredInstanceCount: 1,
                    deployedImages: images["B"]!
                ),
            ]
        )
    }

    @Test("a variant with no reported images records none")
    func missingImages() {
        var lifecycle = created()
        _ = lifecycle.deploymentSucceeded(generation: 1, images: ["A": images["A"]!], now: Fixtures.time(10))
        #expect(lifecycle.record.variants.map(\.deployedImages) == [images["A"]!, []])
    }

    @Test("reports about another generation are ignored", arguments: [0, 2, -1])
    func staleGeneration(generation: Int) {
        var lifecycle = created()
        let before = lifecycle.record
        #expect(lifecycle.deploymentSucceeded(generation: generation, images: images, now: Fixtures.time(10)) == .none)
        #expect(lifecycle.record == before)
        #expect(lifecycle.deploymentFailed(generation: generation, reason: "late", now: Fixtures.time(10)) == .none)
        #expect(lifecycle.record == before)
    }

    @Test("a failed first deployment leaves the endpoint Failed with the reason")
    func createFails() {
        var lifecycle = created()
        #expect(lifecycle.deploymentFailed(generation: 1, reason: "image pull failed", now: Fixtures.time(10)) == .none)
        #expect(lifecycle.record.status == .failed)
        #expect(lifecycle.record.failureReason == "image pull failed")
        #expect(lifecycle.record.lastModifiedTime == Fixtures.time(10))
        #expect(lifecycle.record.deployment == spec)
    }

    @Test("the failure reason is cut to 1024 characters")
    func longReason() {
        var lifecycle = created()
        let reason = String(repeating: "x", count: 1000) + String(repeating: "é", count: 100)
        _ = lifecycle.deploymentFailed(generation: 1, reason: reason, now: Fixtures.time(10))
        #expect(lifecycle.record.failureReason?.count == 1024)
        #expect(lifecycle.record.failureReason == String(reason.prefix(1024)))
    }

    @Test("a report after the first outcome changes nothing")
    func doubleReport() {
        var lifecycle = inService()
        let before = lifecycle.record
        #expect(lifecycle.deploymentFailed(generation: 1, reason: "late", now: Fixtures.time(30)) == .none)
        #expect(lifecycle.deploymentSucceeded(generation: 1, images: [:], now: Fixtures.time(30)) == .none)
        #expect(lifecycle.record == before)
    }

    // MARK: Failed

    @Test("on Failed, updates are refused and delete is the only operation")
    func failedAllowsOnlyDelete() throws {
        var lifecycle = failed()
        let before = lifecycle.record

        let update = #expect(throws: ServiceError.self) {
            try lifecycle.updateRequested(spec: newSpec, now: Fixtures.time(20))
        }
        #expect(update?.code == "ValidationException")
        #expect(update?.status == 400)
        #expect(update?.message.contains(arn) == true)
        let weights = #expect(throws: ServiceError.self) {
            try lifecycle.weightsAndCapacitiesRequested([("A", 1, nil)], now: Fixtures.time(20))
        }
        #expect(weights?.code == "ValidationException")
        #expect(lifecycle.record == before)

        #expect(try lifecycle.deleteRequested(now: Fixtures.time(30)) == .tearDown)
        #expect(lifecycle.record.status == .deleting)
        #expect(lifecycle.record.lastModifiedTime == Fixtures.time(30))
        #expect(lifecycle.record.generation == before.generation + 1)
    }

    // MARK: Delete

    @Test("delete is refused while a deployment runs", arguments: [EndpointStatus.creating, .updating])
    func deleteInProgress(status: EndpointStatus) throws {
        var lifecycle = status == .creating ? created() : try updating()
        let before = lifecycle.record
        let error = #expect(throws: ServiceError.self) { try lifecycle.deleteRequested(now: Fixtures.time(40)) }
        #expect(error == .validation("Cannot update in-progress endpoint \"\(arn)\"."))
        #expect(lifecycle.record == before)
    }

    @Test(
        "delete is allowed once no deployment runs",
        arguments: [EndpointStatus.inService, .failed, .outOfService, .updateRollbackFailed]
    )
    func deleteAllowed(status: EndpointStatus) throws {
        var lifecycle = lifecycle(in: status)
        #expect(try lifecycle.deleteRequested(now: Fixtures.time(40)) == .tearDown)
        #expect(lifecycle.record.status == .deleting)
        #expect(lifecycle.record.pending == nil)
        #expect(lifecycle.record.generation == 4)
    }

    @Test("a deployment report that arrives after delete is ignored")
    func reportAfterDelete() throws {
        var lifecycle = try updating()
        _ = lifecycle.deploymentFailed(generation: 2, reason: "no", now: Fixtures.time(30))
        _ = try lifecycle.deleteRequested(now: Fixtures.time(40))
        let before = lifecycle.record
        #expect(lifecycle.deploymentSucceeded(generation: 2, images: images, now: Fixtures.time(50)) == .none)
        #expect(lifecycle.deploymentFailed(generation: 2, reason: "late", now: Fixtures.time(50)) == .none)
        #expect(lifecycle.record == before)
    }

    @Test("tearDownFinished removes the record only when Deleting", arguments: EndpointStatus.allCases)
    func tearDownFinished(status: EndpointStatus) {
        var lifecycle = lifecycle(in: status)
        let before = lifecycle.record
        #expect(lifecycle.tearDownFinished() == (status == .deleting ? .removeRecord : .none))
        #expect(lifecycle.record == before)
    }

    // MARK: Update

    @Test("update from InService moves to Updating and deploys the next generation")
    func update() throws {
        var lifecycle = inService()
        let action = try lifecycle.updateRequested(spec: newSpec, now: Fixtures.time(20))
        #expect(action == .deploy(generation: 2, spec: newSpec))
        let record = lifecycle.record
        #expect(record.status == .updating)
        #expect(record.generation == 2)
        #expect(record.pending == newSpec)
        #expect(record.deployment == spec)
        #expect(record.target == newSpec)
        #expect(record.configName == "config-1")
        #expect(record.lastModifiedTime == Fixtures.time(20))
        #expect(record.variants.map(\.desiredInstanceCount) == [4, 3])
        #expect(record.variants.map(\.desiredWeight) == [1, 2])
        #expect(record.variants.map(\.currentInstanceCount) == [2, 1])
        #expect(record.variants.map(\.currentWeight) == [3, 1])
    }

    @Test(
        "update is refused while a deployment runs",
        arguments: [EndpointStatus.creating, .updating, .systemUpdating, .deleting]
    )
    func updateInProgress(status: EndpointStatus) {
        var lifecycle = lifecycle(in: status)
        let before = lifecycle.record
        let error = #expect(throws: ServiceError.self) {
            try lifecycle.updateRequested(spec: newSpec, now: Fixtures.time(20))
        }
        #expect(error == .validation("Cannot update in-progress endpoint \"\(arn)\"."))
        #expect(lifecycle.record == before)
    }

    @Test("a successful update brings the new deployment InService")
    func updateSucceeds() throws {
        var lifecycle = try updating()
        #expect(lifecycle.deploymentSucceeded(generation: 2, images: [:], now: Fixtures.time(30)) == .none)
        let record = lifecycle.record
        #expect(record.status == .inService)
        #expect(record.deployment == newSpec)
        #expect(record.pending == nil)
        #expect(record.configName == "config-2")
        #expect(record.variants.map(\.currentInstanceCount) == [4, 3])
        #expect(record.variants.map(\.currentWeight) == [1, 2])
    }

    @Test("a failed update leaves the old deployment InService with the reason and the old desired values")
    func updateFails() throws {
        var lifecycle = try updating()
        let old = inService().record
        #expect(
            lifecycle.deploymentFailed(generation: 2, reason: "health check failed", now: Fixtures.time(30)) == .none
        )
        let record = lifecycle.record
        #expect(record.status == .inService)
        #expect(record.failureReason == "health check failed")
        #expect(record.pending == nil)
        #expect(record.deployment == spec)
        #expect(record.configName == "config-1")
        #expect(record.generation == 2)
        #expect(record.lastModifiedTime == Fixtures.time(30))
        #expect(record.variants == old.variants)

        // The next update clears the reason.
        _ = try lifecycle.updateRequested(spec: newSpec, now: Fixtures.time(40))
        #expect(lifecycle.record.failureReason == nil)
        #expect(lifecycle.record.generation == 3)
    }

    @Test("weights and capacities become an update of the running deployment")
    func weightsAndCapacities() throws {
        var lifecycle = inService()
        let action = try lifecycle.weightsAndCapacitiesRequested(
            [(variant: "B", weight: 5, instanceCount: nil), (variant: "A", weight: nil, instanceCount: 7)],
            now: Fixtures.time(20)
        )
        var expected = spec
        expected.variants[0].instanceCount = 7
        expected.variants[1].weight = 5
        #expect(action == .deploy(generation: 2, spec: expected))
        #expect(lifecycle.record.status == .updating)
        #expect(lifecycle.record.pending == expected)
        #expect(lifecycle.record.variants.map(\.desiredInstanceCount) == [7, 1])
        #expect(lifecycle.record.variants.map(\.desiredWeight) == [3, 5])
    }

    @Test(
        "weights and capacities for unknown variants are refused with SageMaker's wording",
        arguments: [(["Nope"], "Nope"), (["A", "X", "Y"], "X, Y")] as [([String], String)]
    )
    func unknownVariant(names: [String], listed: String) {
        var lifecycle = inService()
        let before = lifecycle.record
        let error = #expect(throws: ServiceError.self) {
            try lifecycle.weightsAndCapacitiesRequested(names.map { ($0, 1, 1) }, now: Fixtures.time(20))
        }
        #expect(
            error
                == .validation(
                    "The variant name(s) \"\(listed)\" is/are not present within endpoint configuration \"config-1\"."
                )
        )
        #expect(lifecycle.record == before)
    }

    // MARK: Recovery

    @Test(
        "recovery redeploys what ran, finishes a delete, and leaves failed endpoints alone",
        arguments: EndpointStatus.allCases
    )
    func recovered(status: EndpointStatus) {
        var lifecycle = lifecycle(in: status, generation: 3)
        let before = lifecycle.record
        let action = lifecycle.recovered(now: Fixtures.time(100))
        let record = lifecycle.record
        switch status {
        case .inService, .systemUpdating, .rollingBack:
            #expect(action == .deploy(generation: 4, spec: spec))
            #expect(record.status == .systemUpdating)
            #expect(record.pending == nil)
            #expect(record.generation == 4)
        case .creating:
            #expect(action == .deploy(generation: 4, spec: spec))
            #expect(record.status == .creating)
            #expect(record.generation == 4)
        case .updating:
            // The old fleet stopped with the server: it is what comes back; the update is dropped, and said so.
            #expect(action == .deploy(generation: 4, spec: spec))
            #expect(record.status == .systemUpdating)
            #expect(record.pending == nil)
            #expect(record.generation == 4)
            #expect(record.failureReason?.contains("interrupted by a restart") == true)
        case .deleting:
            #expect(action == .tearDown)
            #expect(record == before)
        case .failed, .outOfService, .updateRollbackFailed:
            #expect(action == .none)
            #expect(record == before)
        }
    }

    @Test("after recovery, the redeployment's success brings SystemUpdating back InService")
    func recoveredThenSucceeds() {
        var lifecycle = inService()
        #expect(lifecycle.recovered(now: Fixtures.time(100)) == .deploy(generation: 2, spec: spec))
        #expect(lifecycle.record.status == .systemUpdating)
        // A report about the deployment from before the restart does not count.
        #expect(lifecycle.deploymentSucceeded(generation: 1, images: images, now: Fixtures.time(101)) == .none)
        #expect(lifecycle.record.status == .systemUpdating)
        #expect(lifecycle.deploymentSucceeded(generation: 2, images: images, now: Fixtures.time(110)) == .none)
        #expect(lifecycle.record.status == .inService)
        #expect(lifecycle.record.deployment == spec)
        #expect(lifecycle.record.lastModifiedTime == Fixtures.time(110))
    }

    @Test("an update interrupted by a restart brings back the old deployment, with the reason kept")
    func recoveredUpdate() throws {
        var lifecycle = try updating()
        #expect(lifecycle.recovered(now: Fixtures.time(100)) == .deploy(generation: 3, spec: spec))
        #expect(lifecycle.record.pending == nil)
        _ = lifecycle.deploymentSucceeded(generation: 3, images: images, now: Fixtures.time(110))
        #expect(lifecycle.record.status == .inService)
        #expect(lifecycle.record.deployment == spec)
        #expect(lifecycle.record.failureReason?.contains("interrupted by a restart") == true)
        // If even the old deployment cannot come back, the endpoint has nothing serving: Failed.
        var failing = try updating()
        _ = failing.recovered(now: Fixtures.time(100))
        _ = failing.deploymentFailed(generation: 3, reason: "no", now: Fixtures.time(110))
        #expect(failing.record.status == .failed)
        #expect(failing.record.failureReason == "no")
    }
}
