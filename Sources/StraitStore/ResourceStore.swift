public import Foundation
public import StraitCore

/// A tag on a resource.
public struct Tag: Sendable, Equatable, Codable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// A model or an endpoint config: its name, ARN, creation time and the document DescribeModel or
/// DescribeEndpointConfig answers with (less ARN and time, which are added on the way out).
public struct DocumentRecord: Sendable, Equatable {
    public var type: ResourceType
    public var name: String
    public var arn: String
    public var creationTime: Date
    public var document: JSONValue

    public init(type: ResourceType, name: String, arn: String, creationTime: Date, document: JSONValue) {
        self.type = type
        self.name = name
        self.arn = arn
        self.creationTime = creationTime
        self.document = document
    }
}

/// The source of truth for models, endpoint configs, endpoints and tags.
///
/// Names are unique per resource type regardless of case, as SageMaker's lower-cased ARNs make them. Every method
/// that writes does so in one transaction: a crash leaves either all of its change or none of it.
public protocol ResourceStore: Sendable {
    /// Stores a new model or endpoint config with its tags. Throws `.alreadyExists` if the name is taken.
    func insert(_ record: DocumentRecord, tags: [Tag]) throws(StoreError)
    func document(_ type: ResourceType, named name: String) throws(StoreError) -> DocumentRecord?
    func documents(_ type: ResourceType) throws(StoreError) -> [DocumentRecord]
    /// Deletes a model or endpoint config and its tags; false if there was none.
    func deleteDocument(_ type: ResourceType, named name: String) throws(StoreError) -> Bool

    /// Stores a new endpoint with its tags. Throws `.alreadyExists` if the name is taken.
    func insertEndpoint(_ record: EndpointRecord, tags: [Tag]) throws(StoreError)
    func endpoint(named name: String) throws(StoreError) -> EndpointRecord?
    func endpoints() throws(StoreError) -> [EndpointRecord]
    /// Reads, changes and writes back one endpoint atomically; nil if there is no such endpoint. If `body` throws,
    /// nothing is written.
    func updateEndpoint<T>(
        named name: String,
        _ body: (inout EndpointRecord) throws(ServiceError) -> T
    ) throws(ServiceError) -> T?
    /// Deletes an endpoint and its tags; false if there was none.
    func deleteEndpoint(named name: String) throws(StoreError) -> Bool

    func tags(of arn: String) throws(StoreError) -> [Tag]
    /// Adds or overwrites tags by key. Throws `.limitExceeded` if the resource would hold more than `limit`.
    func addTags(_ tags: [Tag], to arn: String, limit: Int) throws(StoreError)
    func deleteTags(keys: [String], from arn: String) throws(StoreError)

    /// The EC2 network (VPCs, subnets, security groups, VPC endpoints) as one JSON document; nil before first start.
    func networkDocument() throws(StoreError) -> String?
    /// Replaces the network document in one transaction.
    func saveNetworkDocument(_ document: String) throws(StoreError)
}

extension Array where Element == Tag {
    /// The tags after adding `new` (overwriting by key, keeping first-seen order).
    public func merging(_ new: [Tag]) -> [Tag] {
        var result = self
        for tag in new {
            if let index = result.firstIndex(where: { $0.key == tag.key }) {
                result[index].value = tag.value
            } else {
                result.append(tag)
            }
        }
        return result
    }
}

extension StoreError {
    /// The store failure as the client sees it: a conflict is the caller's to fix; anything else is ours.
    public var serviceError: ServiceError {
        switch code {
        case .alreadyExists: .validation(message)
        case .limitExceeded: .resourceLimitExceeded(message)
        default: .internalFailure()
        }
    }
}
