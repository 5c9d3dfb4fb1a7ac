import Foundation
import Logging
public import StraitCore
public import StraitStore
import Synchronization

/// The SageMaker control plane: AWS JSON 1.1 operations (`X-Amz-Target: SageMaker.<Operation>`) over the store.
///
/// Transport-free: the HTTP layer authenticates the request and hands over the operation name and body; this type
/// validates, acts and answers with a JSON document or a ``ServiceError``.
public final class ControlPlane: Sendable {
    public static let targetPrefix = "SageMaker."
    /// SageMaker's limit of tags on one resource.
    static let tagLimit = 50

    let store: any ResourceStore
    let account: AccountContext
    let clock: any WallClock
    let controller: EndpointController
    let limits: ControlPlaneLimits
    let model = ServiceModel.shared
    /// Checks a model's VpcConfig (subnet ids, security group ids) against the EC2 network.
    let vpcConfigValidator: (@Sendable ([String], [String]) throws(ServiceError) -> Void)?
    private let instanceChanges = Mutex(())

    public init(
        store: any ResourceStore,
        account: AccountContext,
        clock: any WallClock,
        controller: EndpointController,
        limits: ControlPlaneLimits = ControlPlaneLimits(),
        vpcConfigValidator: (@Sendable ([String], [String]) throws(ServiceError) -> Void)? = nil
    ) {
        self.vpcConfigValidator = vpcConfigValidator
        self.store = store
        self.account = account
        self.clock = clock
        self.controller = controller
        self.limits = limits
    }

    /// The operations this control plane serves.
    public var operationNames: [String] { model.operations.keys.sorted() }

    /// Runs one operation.
    /// - Parameters:
    ///   - target: the `X-Amz-Target` header, for example `SageMaker.CreateModel`.
    ///   - body: the request body: a JSON object.
    /// - Returns: the response document.
    /// - Throws: the `ServiceError` to answer with.
    public func handle(target: String, body: [UInt8]) throws(ServiceError) -> JSONValue {
        guard target.hasPrefix(Self.targetPrefix),
            let operation = Optional(String(target.dropFirst(Self.targetPrefix.count))),
            model.operations[operation] != nil
        else {
            throw ServiceError(
                code: "UnknownOperationException",
                message: target.isEmpty ? "Missing X-Amz-Target header." : "Unknown operation \(target)."
            )
        }
        let input: JSONValue
        do { input = try JSONParser.parse(body.isEmpty ? Array("{}".utf8) : body) } catch {
            throw .serialization("The request body is not valid JSON: \(error.message) at byte \(error.offset).")
        }
        try model.validate(input, operation: operation)
        let request = Request(input)
        switch operation {
        case "CreateModel": return try createModel(request)
        case "DescribeModel": return try describeDocument(.model, request, nameField: "ModelName")
        case "ListModels":
            return try listDocuments(.model, request, key: "Models", nameField: "ModelName", arnField: "ModelArn")
        case "DeleteModel": return try deleteDocument(.model, request, nameField: "ModelName")
        case "CreateEndpointConfig": return try createEndpointConfig(request)
        case "DescribeEndpointConfig":
            return try describeDocument(.endpointConfig, request, nameField: "EndpointConfigName")
        case "ListEndpointConfigs":
            return try listDocuments(
                .endpointConfig,
                request,
                key: "EndpointConfigs",
                nameField: "EndpointConfigName",
                arnField: "EndpointConfigArn"
            )
        case "DeleteEndpointConfig":
            return try deleteDocument(.endpointConfig, request, nameField: "EndpointConfigName")
        case "CreateEndpoint":
            return try serializingInstanceChanges { () throws(ServiceError) in try createEndpoint(request) }
        case "DescribeEndpoint": return try describeEndpoint(request)
        case "ListEndpoints": return try listEndpoints(request)
        case "UpdateEndpoint":
            return try serializingInstanceChanges { () throws(ServiceError) in try updateEndpoint(request) }
        case "UpdateEndpointWeightsAndCapacities":
            return try serializingInstanceChanges { () throws(ServiceError) in try updateWeightsAndCapacities(request) }
        case "DeleteEndpoint": return try deleteEndpoint(request)
        case "AddTags": return try addTags(request)
        case "ListTags": return try listTags(request)
        case "DeleteTags": return try deleteTags(request)
        default: throw ServiceError.internalFailure()
        }
    }

    /// Runs an operation that changes how many instances endpoints want, one at a time, so that two concurrent
    /// requests cannot both pass the instance quota.
    func serializingInstanceChanges(_ body: () throws(ServiceError) -> JSONValue) throws(ServiceError) -> JSONValue {
        try instanceChanges.withLock { (_: inout Void) throws(ServiceError) -> JSONValue in try body() }
    }

    /// Runs a store call, turning its failure into the error the client sees.
    func storing<T>(_ body: () throws(StoreError) -> T) throws(ServiceError) -> T {
        do { return try body() } catch { throw error.serviceError }
    }

    func notFound(_ type: ResourceType, _ name: String) -> ServiceError {
        .validation("Could not find \(type.noun) \"\(account.arn(type, name))\".")
    }
}

/// Account quotas, as SageMaker's service limits.
public struct ControlPlaneLimits: Sendable {
    /// Instances of one instance type, summed over every endpoint (SageMaker's "<type> for endpoint usage").
    public var instancesPerType: Int

    public init(instancesPerType: Int = 20) { self.instancesPerType = instancesPerType }
}

/// A validated request document, with typed accessors. Validation has already checked types and constraints, so a
/// member is either absent or of its modelled type.
struct Request {
    let document: JSONValue

    init(_ document: JSONValue) { self.document = document }

    subscript(_ key: String) -> JSONValue? {
        guard let value = document[key], value != .null else { return nil }
        return value
    }

    func string(_ key: String) -> String? { self[key]?.stringValue }

    /// A member the model marks required (validation has made sure it is there).
    func required(_ key: String) throws(ServiceError) -> String {
        guard let value = string(key) else {
            throw .validation(
                "Value null at '\(ServiceModel.lowerCamel(key))' failed to satisfy constraint: Member must not be null"
            )
        }
        return value
    }

    func date(_ key: String) -> Date? { self[key].flatMap(Timestamps.parse) }

    /// A count the model types as an integer with no upper bound, clamped so that a huge value stays huge (and
    /// meets the instance limit) instead of failing to convert.
    static func count(_ value: JSONValue?) -> Int? {
        value?.doubleValue.map { Int(min(max($0, 0), 1e9)) }
    }

    /// The request's tags, a repeated key keeping its last value.
    func tags() -> [Tag] {
        let given = (self["Tags"]?.arrayValue ?? []).compactMap { tag -> Tag? in
            guard let key = tag["Key"]?.stringValue else { return nil }
            return Tag(key: key, value: tag["Value"]?.stringValue ?? "")
        }
        return [Tag]().merging(given)
    }

    /// The document without the members that are not part of the resource's description.
    func describing(removing keys: Set<String>) -> JSONValue {
        guard case .object(var members) = document else { return document }
        for key in keys { members[key] = nil }
        members = members.filter { $0.value != .null }
        return .object(members)
    }
}
