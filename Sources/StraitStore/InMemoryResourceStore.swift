public import StraitCore
import Synchronization

/// The store's in-memory twin, for unit tests: the same contract as ``SQLiteResourceStore``, nothing on disk.
public final class InMemoryResourceStore: ResourceStore {
    private struct State {
        var documents: [ResourceType: [String: DocumentRecord]] = [:]
        var endpoints: [String: EndpointRecord] = [:]
        var tags: [String: [Tag]] = [:]
        var network: String?
    }

    private let state = Mutex(State())

    public init() {}

    public func networkDocument() throws(StoreError) -> String? { state.withLock { $0.network } }

    public func saveNetworkDocument(_ document: String) throws(StoreError) {
        state.withLock { $0.network = document }
    }

    private static func key(_ name: String) -> String { name.lowercased() }

    public func insert(_ record: DocumentRecord, tags: [Tag]) throws(StoreError) {
        try state.withLock { state throws(StoreError) in
            if let existing = state.documents[record.type]?[Self.key(record.name)] {
                throw StoreError(
                    .alreadyExists,
                    "Cannot create already existing \(record.type.noun) \"\(existing.arn)\"."
                )
            }
            state.documents[record.type, default: [:]][Self.key(record.name)] = record
            state.tags[record.arn] = [Tag]().merging(tags)
        }
    }

    public func document(_ type: ResourceType, named name: String) throws(StoreError) -> DocumentRecord? {
        state.withLock { $0.documents[type]?[Self.key(name)] }
    }

    public func documents(_ type: ResourceType) throws(StoreError) -> [DocumentRecord] {
        state.withLock { Array(($0.documents[type] ?? [:]).values) }
    }

    public func deleteDocument(_ type: ResourceType, named name: String) throws(StoreError) -> Bool {
        state.withLock { state in
            guard let record = state.documents[type]?.removeValue(forKey: Self.key(name)) else { return false }
            state.tags[record.arn] = nil
            return true
        }
    }

    public func insertEndpoint(_ record: EndpointRecord, tags: [Tag]) throws(StoreError) {
        try state.withLock { state throws(StoreError) in
            if let existing = state.endpoints[Self.key(record.name)] {
                throw StoreError(.alreadyExists, "Cannot create already existing endpoint \"\(existing.arn)\".")
            }
            state.endpoints[Self.key(record.name)] = record
            state.tags[record.arn] = [Tag]().merging(tags)
        }
    }

    public func endpoint(named name: String) throws(StoreError) -> EndpointRecord? {
        state.withLock { $0.endpoints[Self.key(name)] }
    }

    public func endpoints() throws(StoreError) -> [EndpointRecord] {
        state.withLock { Array($0.endpoints.values) }
    }

    public func updateEndpoint<T>(
        named name: String,
        _ body: (inout EndpointRecord) throws(ServiceError) -> T
    ) throws(ServiceError) -> T? {
        try state.withLock { state throws(ServiceError) -> T? in
            guard var record = state.endpoints[Self.key(name)] else { return nil }
            let value = try body(&record)
            state.endpoints[Self.key(name)] = record
            return value
        }
    }

    public func deleteEndpoint(named name: String) throws(StoreError) -> Bool {
        state.withLock { state in
            guard let record = state.endpoints.removeValue(forKey: Self.key(name)) else { return false }
            state.tags[record.arn] = nil
            return true
        }
    }

    public func tags(of arn: String) throws(StoreError) -> [Tag] {
        state.withLock { $0.tags[arn] ?? [] }
    }

    public func addTags(_ tags: [Tag], to arn: String, limit: Int) throws(StoreError) {
        try state.withLock { state throws(StoreError) in
            let merged = (state.tags[arn] ?? []).merging(tags)
            guard merged.count <= limit else {
                throw StoreError(
                    .limitExceeded,
                    "The resource \(arn) would have \(merged.count) tags; at most \(limit) are allowed."
                )
            }
            state.tags[arn] = merged
        }
    }

    public func deleteTags(keys: [String], from arn: String) throws(StoreError) {
        state.withLock { state in
            state.tags[arn]?.removeAll { keys.contains($0.key) }
        }
    }
}
