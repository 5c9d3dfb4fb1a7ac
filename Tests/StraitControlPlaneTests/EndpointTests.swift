import StraitControlPlane
import StraitCore
import StraitTestSupport
import Testing

@Suite struct EndpointTests {
    static let arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep"

    @Test func missingConfig() throws {
        let harness = Harness()
        let error = #expect(throws: ServiceError.self) { try harness.createEndpoint("ep", config: "Nope") }
        #expect(error?.code == "ValidationException")
        #expect(
            error?.message
                == #"Could not find endpoint configuration "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/nope"."#
        )
        #expect(harness.status("ep") == nil)
    }

    @Test func configWhoseModelWasDeleted() throws {
        let harness = Harness()
        try harness.createModel("m")
        try harness.createConfig("c", model: "m")
        try harness.call("DeleteModel", #"{"ModelName":"m"}"#)
        let error = #expect(throws: ServiceError.self) { try harness.createEndpoint("ep", config: "c") }
        #expect(error?.message == #"Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/m"."#)
    }

    @Test func createIsCreatingUntilTheControllerRuns() throws {
        let harness = Harness()
        try harness.createModel("m")
        try harness.createConfig("c", model: "m", instanceCount: 2)
        #expect(try harness.createEndpoint("Ep", config: "c") == .object(["EndpointArn": .string(Self.arn)]))

        let described = try harness.describeEndpoint("ep")
        #expect(described["EndpointName"] == .string("Ep"))
        #expect(described["EndpointArn"] == .string(Self.arn))
        #expect(described["EndpointConfigName"] == .string("c"))
        #expect(described["EndpointStatus"] == .string("Creating"))
        #expect(described["CreationTime"] == .number(1_700_000_000))
        #expect(described["FailureReason"] == nil)
        let variant = try #require(described["ProductionVariants"]?.arrayValue?.first)
        #expect(variant["VariantName"] == .string("AllTraffic"))
        #expect(variant["CurrentInstanceCount"] == .number(0))
        #expect(variant["DesiredInstanceCount"] == .number(2))
        #expect(variant["DeployedImages"] == .array([]))
        #expect(harness.reconciler.deployments.isEmpty)
    }

    @Test func duplicate() throws {
        let harness = Harness()
        try harness.createEndpointStack("ep")
        let error = #expect(throws: ServiceError.self) { try harness.createEndpoint("EP", config: "ep-config") }
        #expect(error?.message == #"Cannot create already existing endpoint "\#(Self.arn)"."#)
    }

    @Test(arguments: [
        ("UpdateEndpoint", #"{"EndpointName":"ep","EndpointConfigName":"ep-config"}"#),
        (
            "UpdateEndpointWeightsAndCapacities",
            #"{"EndpointName":"ep","DesiredWeightsAndCapacities":[{"VariantName":"AllTraffic","DesiredWeight":2}]}"#
        ),
        ("DeleteEndpoint", #"{"EndpointName":"ep"}"#),
    ])
    func changesWhileCreatingAreRefused(_ operation: String, _ body: String) throws {
        let harness = Harness()
        try harness.createEndpointStack("ep")
        let error = try #require(harness.failure(operation, body))
        #expect(error.code == "ValidationException")
        #expect(error.message == #"Cannot update in-progress endpoint "\#(Self.arn)"."#)
        #expect(harness.status("ep") == "Creating")
    }

    @Test func duplicateVariantInWeightsAndCapacities() throws {
        let harness = Harness()
        try harness.createEndpointStack("ep")
        let error = try #require(
            harness.failure(
                "UpdateEndpointWeightsAndCapacities",
                #"{"EndpointName":"ep","DesiredWeightsAndCapacities":[{"VariantName":"AllTraffic","DesiredWeight":2},{"VariantName":"AllTraffic","DesiredInstanceCount":3}]}"#
            )
        )
        #expect(error.code == "ValidationException")
        #expect(error.message == #"The variant name "AllTraffic" was non-unique within the request."#)
    }

    @Test(arguments: ["DescribeEndpoint", "DeleteEndpoint"])
    func missingEndpoint(_ operation: String) throws {
        let error = try #require(Harness().failure(operation, #"{"EndpointName":"Ghost"}"#))
        #expect(error.message == #"Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ghost"."#)
    }

    @Test func updateOfAMissingEndpoint() throws {
        let harness = Harness()
        try harness.createModel("m")
        try harness.createConfig("c", model: "m")
        let error = try #require(
            harness.failure("UpdateEndpoint", #"{"EndpointName":"ghost","EndpointConfigName":"c"}"#)
        )
        #expect(error.message == #"Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ghost"."#)
    }

    /// Create → InService → update weights (Updating, gated) → InService → UpdateEndpoint → InService → delete → gone.
    @Test(.timeLimit(.minutes(1)))
    func lifecycleWithTheController() async throws {
        let gate = Gate()
        let reconciler = StubReconciler { _, generation, spec in
            if generation == 2 { await gate.wait() }
            return .succeeded(images: StubReconciler.images(for: spec))
        }
        let harness = Harness(clock: TestClock(Fixtures.epoch, step: 1), reconciler: reconciler)
        try harness.createEndpointStack("ep")
        try harness.createModel("m2", image: "strait/echo:2")
        try harness.createConfig("c2", variants: [("AllTraffic", "m2"), ("Canary", "m2")])
        #expect(harness.status("ep") == "Creating")

        try await harness.withController {
            #expect(await poll { harness.status("ep") == "InService" })
            let inService = try harness.describeEndpoint("ep")
            let variant = try #require(inService["ProductionVariants"]?.arrayValue?.first)
            #expect(variant["CurrentInstanceCount"] == .number(1))
            #expect(variant["CurrentWeight"] == .number(1))
            #expect(
                variant["DeployedImages"]?.arrayValue?.first?["SpecifiedImage"] == .string(Harness.image)
            )
            #expect(harness.reconciler.deployments.map(\.generation) == [1])
            #expect(harness.reconciler.deployments.first?.spec.variants.first?.image == Harness.image)

            // An update of weights and counts; the stub holds deployment 2 until the gate opens.
            try harness.call(
                "UpdateEndpointWeightsAndCapacities",
                #"{"EndpointName":"ep","DesiredWeightsAndCapacities":[{"VariantName":"AllTraffic","DesiredWeight":3,"DesiredInstanceCount":2}]}"#
            )
            let updating = try harness.describeEndpoint("ep")
            #expect(updating["EndpointStatus"] == .string("Updating"))
            let pending = try #require(updating["PendingDeploymentSummary"])
            #expect(pending["EndpointConfigName"] == .string("ep-config"))
            let updatingVariant = try #require(updating["ProductionVariants"]?.arrayValue?.first)
            #expect(updatingVariant["CurrentWeight"] == .number(1))
            #expect(updatingVariant["DesiredWeight"] == .number(3))
            #expect(updatingVariant["DesiredInstanceCount"] == .number(2))
            #expect(
                harness.failure("UpdateEndpoint", #"{"EndpointName":"ep","EndpointConfigName":"c2"}"#)?.message
                    == #"Cannot update in-progress endpoint "\#(Self.arn)"."#
            )
            #expect(harness.failure("DeleteEndpoint", #"{"EndpointName":"ep"}"#)?.code == "ValidationException")

            gate.open()
            #expect(await poll { harness.status("ep") == "InService" })
            let updated = try harness.describeEndpoint("ep")
            #expect(updated["PendingDeploymentSummary"] == nil)
            let updatedVariant = try #require(updated["ProductionVariants"]?.arrayValue?.first)
            #expect(updatedVariant["CurrentWeight"] == .number(3))
            #expect(updatedVariant["CurrentInstanceCount"] == .number(2))

            // A new endpoint config, with a second variant.
            try harness.call("UpdateEndpoint", #"{"EndpointName":"ep","EndpointConfigName":"c2"}"#)
            #expect(await poll { harness.status("ep") == "InService" })
            let moved = try harness.describeEndpoint("ep")
            #expect(moved["EndpointConfigName"] == .string("c2"))
            #expect(moved.strings("ProductionVariants", "VariantName") == ["AllTraffic", "Canary"])
            #expect(harness.reconciler.deployments.map(\.generation) == [1, 2, 3])
            #expect(
                harness.reconciler.deployments.last?.spec.variants.map(\.image) == ["strait/echo:2", "strait/echo:2"]
            )

            try harness.call("DeleteEndpoint", #"{"EndpointName":"ep"}"#)
            #expect(await poll { harness.status("ep") == nil })
            #expect(harness.reconciler.tearDowns == ["ep"])
            #expect(try harness.call("ListEndpoints", "{}") == .object(["Endpoints": .array([])]))
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func failedDeployment() async throws {
        let harness = Harness(reconciler: StubReconciler(outcome: StubReconciler.failAll(reason: "image pull failed")))
        try harness.createEndpointStack("ep")
        try await harness.withController {
            #expect(await poll { harness.status("ep") == "Failed" })
            let described = try harness.describeEndpoint("ep")
            #expect(described["FailureReason"] == .string("image pull failed"))

            let error = try #require(
                harness.failure("UpdateEndpoint", #"{"EndpointName":"ep","EndpointConfigName":"ep-config"}"#)
            )
            #expect(
                error.message
                    == #"Cannot update endpoint "\#(Self.arn)" because it is in status Failed. DeleteEndpoint is the only operation allowed on a failed endpoint."#
            )

            try harness.call("DeleteEndpoint", #"{"EndpointName":"ep"}"#)
            #expect(await poll { harness.status("ep") == nil })
            #expect(harness.reconciler.tearDowns == ["ep"])
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func failedUpdateKeepsTheOldFleet() async throws {
        let reconciler = StubReconciler { _, generation, spec in
            generation == 1 ? .succeeded(images: StubReconciler.images(for: spec)) : .failed(reason: "unhealthy")
        }
        let harness = Harness(reconciler: reconciler)
        try harness.createEndpointStack("ep")
        try harness.createModel("m2")
        try harness.createConfig("c2", model: "m2")
        try await harness.withController {
            #expect(await poll { harness.status("ep") == "InService" })
            try harness.call("UpdateEndpoint", #"{"EndpointName":"ep","EndpointConfigName":"c2"}"#)
            #expect(await poll { (try? harness.describeEndpoint("ep"))?["FailureReason"] == .string("unhealthy") })
            let described = try harness.describeEndpoint("ep")
            #expect(described["EndpointStatus"] == .string("InService"))
            #expect(described["EndpointConfigName"] == .string("ep-config"))
            #expect(described["PendingDeploymentSummary"] == nil)
        }
    }
}

@Suite struct InstanceLimitTests {
    /// SageMaker's per-type endpoint-usage quota: counted over every endpoint, refused with ResourceLimitExceeded.
    @Test func instancesPerTypeAreLimitedAcrossEndpoints() throws {
        let harness = Harness()
        try harness.createModel("m")
        try harness.call(
            "CreateEndpointConfig",
            #"{"EndpointConfigName":"big","ProductionVariants":[{"VariantName":"v","ModelName":"m","InstanceType":"ml.m5.large","InitialInstanceCount":15}]}"#
        )
        try harness.call("CreateEndpoint", #"{"EndpointName":"one","EndpointConfigName":"big"}"#)
        let error = harness.failure("CreateEndpoint", #"{"EndpointName":"two","EndpointConfigName":"big"}"#)
        #expect(error?.code == "ResourceLimitExceeded")
        #expect(
            error?.message.hasPrefix(
                "The account-level service limit 'ml.m5.large for endpoint usage' is 20 Instances, with current utilization of 15 Instances and a request delta of 15 Instances."
            ) == true
        )
        #expect(harness.failure("DescribeEndpoint", #"{"EndpointName":"two"}"#)?.code == "ValidationException")
    }

    /// A count too large for any machine is refused, not silently replaced.
    @Test func hugeInstanceCountIsRefused() throws {
        let harness = Harness()
        try harness.createModel("m")
        try harness.call(
            "CreateEndpointConfig",
            #"{"EndpointConfigName":"huge","ProductionVariants":[{"VariantName":"v","ModelName":"m","InstanceType":"ml.m5.large","InitialInstanceCount":100000000000000000000}]}"#
        )
        let error = harness.failure("CreateEndpoint", #"{"EndpointName":"e","EndpointConfigName":"huge"}"#)
        #expect(error?.code == "ResourceLimitExceeded")
    }
}
