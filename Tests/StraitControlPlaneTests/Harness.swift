import Foundation
import Logging
import StraitControlPlane
import StraitCore
import StraitStore
import StraitTestSupport
import Testing

/// A control plane over an in-memory store, a test clock and a stub reconciler, driven in-process the way the HTTP
/// layer drives it: by operation name and JSON body.
struct Harness: Sendable {
    static let account = AccountContext(region: "us-east-1", accountID: "123456789012")
    static let image = "strait/echo:latest"
    static let role = "arn:aws:iam::123456789012:role/strait"

    let store = InMemoryResourceStore()
    let clock: TestClock
    let reconciler: StubReconciler
    let controller: EndpointController
    let plane: ControlPlane

    init(clock: TestClock = TestClock(Fixtures.epoch), reconciler: StubReconciler = StubReconciler()) {
        self.clock = clock
        self.reconciler = reconciler
        controller = EndpointController(
            store: store,
            reconciler: reconciler,
            clock: clock,
            logger: Logger(label: "test")
        )
        plane = ControlPlane(store: store, account: Self.account, clock: clock, controller: controller)
    }

    /// Runs `SageMaker.<operation>` with `json` as the body.
    @discardableResult
    func call(_ operation: String, _ json: String) throws(ServiceError) -> JSONValue {
        try plane.handle(target: ControlPlane.targetPrefix + operation, body: Array(json.utf8))
    }

    /// Runs an operation that must fail and returns its error (nil, recorded as a test failure, if it succeeded).
    func failure(
        _ operation: String,
        _ json: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> ServiceError? {
        #expect(throws: ServiceError.self, sourceLocation: sourceLocation) { try call(operation, json) }
    }

    func arn(_ type: ResourceType, _ name: String) -> String { Self.account.arn(type, name) }

    // MARK: Fixtures

    @discardableResult
    func createModel(_ name: String, image: String = Harness.image, tags: String? = nil) throws -> JSONValue {
        let tagMember = tags.map { #","Tags":\#($0)"# } ?? ""
        return try call(
            "CreateModel",
            #"{"ModelName":"\#(name)","PrimaryContainer":{"Image":"\#(image)"},"ExecutionRoleArn":"\#(Self.role)"\#(tagMember)}"#
        )
    }

    /// An endpoint config with one variant per `(variant, model)` pair.
    @discardableResult
    func createConfig(
        _ name: String,
        variants: [(variant: String, model: String)],
        instanceCount: Int = 1,
        tags: String? = nil
    ) throws -> JSONValue {
        let list = variants.map {
            #"{"VariantName":"\#($0.variant)","ModelName":"\#($0.model)","InstanceType":"ml.m5.large","InitialInstanceCount":\#(instanceCount)}"#
        }.joined(separator: ",")
        let tagMember = tags.map { #","Tags":\#($0)"# } ?? ""
        return try call(
            "CreateEndpointConfig",
            #"{"EndpointConfigName":"\#(name)","ProductionVariants":[\#(list)]\#(tagMember)}"#
        )
    }

    @discardableResult
    func createConfig(_ name: String, model: String, instanceCount: Int = 1) throws -> JSONValue {
        try createConfig(name, variants: [("AllTraffic", model)], instanceCount: instanceCount)
    }

    @discardableResult
    func createEndpoint(_ name: String, config: String, tags: String? = nil) throws -> JSONValue {
        let tagMember = tags.map { #","Tags":\#($0)"# } ?? ""
        return try call(
            "CreateEndpoint",
            #"{"EndpointName":"\#(name)","EndpointConfigName":"\#(config)"\#(tagMember)}"#
        )
    }

    /// A model, a one-variant config and an endpoint on it, all named after `name`.
    func createEndpointStack(_ name: String) throws {
        try createModel("\(name)-model")
        try createConfig("\(name)-config", model: "\(name)-model")
        try createEndpoint(name, config: "\(name)-config")
    }

    func describeEndpoint(_ name: String) throws -> JSONValue {
        try call("DescribeEndpoint", #"{"EndpointName":"\#(name)"}"#)
    }

    /// The endpoint's status, or nil once it is gone.
    func status(_ name: String) -> String? {
        (try? describeEndpoint(name))?["EndpointStatus"]?.stringValue
    }

    /// Runs `body` while the endpoint controller executes jobs, then stops it.
    func withController<T>(_ body: () async throws -> T) async throws -> T {
        let controller = self.controller
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await controller.run() }
            defer { group.cancelAll() }
            return try await body()
        }
    }
}

/// A one-shot barrier for a stub deployment: `wait()` returns after `open()` (or when the task is cancelled).
final class Gate: Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() { (stream, continuation) = AsyncStream.makeStream(of: Void.self) }

    func wait() async {
        for await _ in stream { return }
    }

    func open() { continuation.yield() }
}

/// `[{"Key":"k0","Value":"v0"}, …]` for keys `prefix0..<count`.
func tagList(_ count: Int, prefix: String = "k", value: String = "v") -> String {
    "[" + (0..<count).map { #"{"Key":"\#(prefix)\#($0)","Value":"\#(value)\#($0)"}"# }.joined(separator: ",") + "]"
}

extension JSONValue {
    /// The members `key` of each element of the array under `list`, as strings.
    func strings(_ list: String, _ key: String) -> [String] {
        (self[list]?.arrayValue ?? []).compactMap { $0[key]?.stringValue }
    }
}
