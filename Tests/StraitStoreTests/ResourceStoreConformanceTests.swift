import Foundation
import StraitCore
import StraitStore
import StraitTestSupport
import Testing

/// The two `ResourceStore` implementations; every conformance test runs against each.
enum StoreKind: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case sqlite
    case memory

    var testDescription: String { rawValue }

    /// Runs `body` with a new, empty store of this kind. An SQLite store lives in a fresh temporary directory that
    /// is removed afterwards.
    func withStore<T>(_ body: (any ResourceStore) throws -> T) throws -> T {
        switch self {
        case .memory:
            return try body(InMemoryResourceStore())
        case .sqlite:
            return try withTemporaryDirectory { directory in
                try body(try SQLiteResourceStore(path: directory.path("strait.db")))
            }
        }
    }
}

/// A model or endpoint config record named `name`, with a document that uses every kind of JSON value.
func documentRecord(_ type: ResourceType, _ name: String, at time: Date = Fixtures.epoch) -> DocumentRecord {
    DocumentRecord(
        type: type,
        name: name,
        arn: Fixtures.account.arn(type, name),
        creationTime: time,
        document: .object([
            "Name": .string(name),
            "Container": .object([
                "Image": .string("strait/echo:latest"), "Environment": .object(["K": .string("v\n\"")]),
            ]),
            "Flags": .array([.bool(true), .bool(false), .null]),
            "Count": .number(2),
            "Fraction": .number(0.25),
        ])
    )
}

/// An endpoint record with every optional part filled in, so that a store that drops one is caught.
func richEndpoint(_ name: String = "endpoint-1") -> EndpointRecord {
    let running = Fixtures.deployment(
        config: "config-1",
        variants: [
            VariantSpec(
                name: "A",
                modelName: "model-1",
                image: "strait/echo:1",
                environment: ["K": "V", "Q": "\"x\""],
                modelDataURL: "s3://bucket/model.tar.gz",
                instanceType: "ml.m5.large",
                instanceCount: 2,
                weight: 0.75,
                routingStrategy: "LEAST_OUTSTANDING_REQUESTS",
                subnetIDs: ["subnet-1", "subnet-2"],
                startupHealthCheckTimeoutSeconds: 600,
                modelDataDownloadTimeoutSeconds: 900
            ),
            Fixtures.variant("B", weight: 0.25),
        ]
    )
    var record = Fixtures.endpoint(
        name,
        status: .updating,
        spec: running,
        pending: Fixtures.deployment(config: "config-2"),
        generation: 7,
        at: Fixtures.time(0)
    )
    record.failureReason = "the previous update failed"
    record.lastModifiedTime = Fixtures.time(90)
    record.variants[0].deployedImages = [
        DeployedImage(
            specifiedImage: "strait/echo:1",
            resolvedImage: "strait/echo@sha256:abc",
            resolutionTime: Fixtures.time(30)
        )
    ]
    return record
}

@Suite("ResourceStore conformance")
struct ResourceStoreConformanceTests {
    // MARK: Documents

    @Test("insert, then read a document back by name in any case", arguments: StoreKind.allCases)
    func insertAndRead(kind: StoreKind) throws {
        try kind.withStore { store in
            let model = documentRecord(.model, "Model-1")
            let config = documentRecord(.endpointConfig, "Model-1")
            try store.insert(model, tags: [])
            try store.insert(config, tags: [])  // the same name in another type is a different resource

            #expect(try store.document(.model, named: "Model-1") == model)
            #expect(try store.document(.model, named: "model-1") == model)
            #expect(try store.document(.model, named: "MODEL-1") == model)
            #expect(try store.document(.endpointConfig, named: "Model-1") == config)
            #expect(try store.document(.model, named: "model-2") == nil)
            #expect(try store.document(.endpoint, named: "Model-1") == nil)
        }
    }

    @Test("documents lists every record of one type", arguments: StoreKind.allCases)
    func documents(kind: StoreKind) throws {
        try kind.withStore { store in
            #expect(try store.documents(.model).isEmpty)
            let models = ["b", "a", "c"].map { documentRecord(.model, $0, at: Fixtures.time($0.count)) }
            for model in models { try store.insert(model, tags: []) }
            try store.insert(documentRecord(.endpointConfig, "config"), tags: [])

            #expect(try store.documents(.model).sorted { $0.name < $1.name } == models.sorted { $0.name < $1.name })
            #expect(try store.documents(.endpointConfig).map(\.name) == ["config"])
        }
    }

    @Test("deleteDocument removes one record and reports whether there was one", arguments: StoreKind.allCases)
    func deleteDocument(kind: StoreKind) throws {
        try kind.withStore { store in
            try store.insert(documentRecord(.model, "m"), tags: [])
            try store.insert(documentRecord(.endpointConfig, "m"), tags: [])

            #expect(try store.deleteDocument(.model, named: "M") == true)
            #expect(try store.document(.model, named: "m") == nil)
            #expect(try store.deleteDocument(.model, named: "m") == false)
            #expect(try store.document(.endpointConfig, named: "m") != nil)
            #expect(try store.documents(.model).isEmpty)

            // The name is free again.
            try store.insert(documentRecord(.model, "m"), tags: [])
            #expect(try store.document(.model, named: "m") != nil)
        }
    }

    static let duplicateCases: [(StoreKind, ResourceType, String)] = StoreKind.allCases.flatMap { kind in
        [ResourceType.model, .endpointConfig].flatMap { type in
            ["Model-1", "model-1", "MODEL-1"].map { (kind, type, $0) }
        }
    }

    @Test("a duplicate name, in any case, is refused with SageMaker's message", arguments: duplicateCases)
    func duplicateDocument(kind: StoreKind, type: ResourceType, duplicate: String) throws {
        try kind.withStore { store in
            let original = documentRecord(type, "Model-1")
            let tags = [Tag(key: "owner", value: "first")]
            try store.insert(original, tags: tags)

            let error = #expect(throws: StoreError.self) {
                try store.insert(
                    documentRecord(type, duplicate, at: Fixtures.time(5)),
                    tags: [Tag(key: "x", value: "y")]
                )
            }
            let noun = type == .model ? "model" : "endpoint configuration"
            #expect(error?.code == .alreadyExists)
            #expect(error?.message == "Cannot create already existing \(noun) \"\(original.arn)\".")
            #expect(error?.serviceError.code == "ValidationException")

            // Nothing of the refused insert was written.
            #expect(try store.document(type, named: "Model-1") == original)
            #expect(try store.documents(type).count == 1)
            #expect(try store.tags(of: original.arn) == tags)
        }
    }

    // MARK: Tags

    @Test("tags are stored with the resource, in order", arguments: StoreKind.allCases)
    func tagsOnInsert(kind: StoreKind) throws {
        try kind.withStore { store in
            let model = documentRecord(.model, "m")
            let tags = [Tag(key: "z", value: "1"), Tag(key: "a", value: ""), Tag(key: "m", value: "é \"q\"")]
            try store.insert(model, tags: tags)
            #expect(try store.tags(of: model.arn) == tags)
            #expect(try store.tags(of: Fixtures.account.arn(.model, "other")).isEmpty)
        }
    }

    @Test("addTags overwrites by key, keeps the order and appends new keys", arguments: StoreKind.allCases)
    func addTags(kind: StoreKind) throws {
        try kind.withStore { store in
            let model = documentRecord(.model, "m")
            try store.insert(model, tags: [Tag(key: "a", value: "1"), Tag(key: "b", value: "2")])
            try store.addTags([Tag(key: "c", value: "3"), Tag(key: "a", value: "10")], to: model.arn, limit: 50)
            #expect(
                try store.tags(of: model.arn) == [
                    Tag(key: "a", value: "10"), Tag(key: "b", value: "2"), Tag(key: "c", value: "3"),
                ]
            )
            try store.addTags([], to: model.arn, limit: 50)
            #expect(try store.tags(of: model.arn).map(\.key) == ["a", "b", "c"])
        }
    }

    @Test("addTags past the limit throws limitExceeded and writes nothing", arguments: StoreKind.allCases)
    func tagLimit(kind: StoreKind) throws {
        try kind.withStore { store in
            let model = documentRecord(.model, "m")
            let initial = [Tag(key: "a", value: "1"), Tag(key: "b", value: "2")]
            try store.insert(model, tags: initial)

            let error = #expect(throws: StoreError.self) {
                try store.addTags(
                    [Tag(key: "a", value: "changed"), Tag(key: "c", value: "3"), Tag(key: "d", value: "4")],
                    to: model.arn,
                    limit: 3
                )
            }
            #expect(error?.code == .limitExceeded)
            #expect(error?.serviceError.code == "ResourceLimitExceeded")
            #expect(try store.tags(of: model.arn) == initial)

            // Reaching the limit exactly is fine, and overwriting keys at the limit adds none.
            try store.addTags([Tag(key: "c", value: "3")], to: model.arn, limit: 3)
            try store.addTags([Tag(key: "a", value: "changed")], to: model.arn, limit: 3)
            #expect(
                try store.tags(of: model.arn) == [
                    Tag(key: "a", value: "changed"), Tag(key: "b", value: "2"), Tag(key: "c", value: "3"),
                ]
            )
        }
    }

    @Test("deleteTags removes the named keys and ignores unknown ones", arguments: StoreKind.allCases)
    func deleteTags(kind: StoreKind) throws {
        try kind.withStore { store in
            let model = documentRecord(.model, "m")
            try store.insert(
                model,
                tags: [Tag(key: "a", value: "1"), Tag(key: "b", value: "2"), Tag(key: "c", value: "3")]
            )
            try store.deleteTags(keys: ["b", "nope", "A"], from: model.arn)
            #expect(try store.tags(of: model.arn) == [Tag(key: "a", value: "1"), Tag(key: "c", value: "3")])
            try store.deleteTags(keys: ["x"], from: Fixtures.account.arn(.model, "missing"))
            try store.deleteTags(keys: ["a", "c"], from: model.arn)
            #expect(try store.tags(of: model.arn).isEmpty)
        }
    }

    @Test("deleting a resource deletes its tags", arguments: StoreKind.allCases)
    func tagsDeletedWithResource(kind: StoreKind) throws {
        try kind.withStore { store in
            let model = documentRecord(.model, "m")
            let config = documentRecord(.endpointConfig, "c")
            let endpoint = Fixtures.endpoint("e")
            let tags = [Tag(key: "k", value: "v")]
            try store.insert(model, tags: tags)
            try store.insert(config, tags: tags)
            try store.insertEndpoint(endpoint, tags: tags)

            #expect(try store.deleteDocument(.model, named: "m"))
            #expect(try store.tags(of: model.arn).isEmpty)
            #expect(try store.tags(of: config.arn) == tags)
            #expect(try store.deleteEndpoint(named: "e"))
            #expect(try store.tags(of: endpoint.arn).isEmpty)

            // A resource created again under the same name starts with only its own tags.
            try store.insert(model, tags: [Tag(key: "new", value: "1")])
            #expect(try store.tags(of: model.arn) == [Tag(key: "new", value: "1")])
        }
    }

    @Test("both stores treat a tag key repeated within one insert the same way")
    func repeatedTagKeyOnInsert() throws {
        var outcomes: [StoreKind: String] = [:]
        for kind in StoreKind.allCases {
            outcomes[kind] = try kind.withStore { store in
                let model = documentRecord(.model, "m")
                do throws(StoreError) {
                    try store.insert(model, tags: [Tag(key: "k", value: "1"), Tag(key: "k", value: "2")])
                    return "tags \(try store.tags(of: model.arn).map { "\($0.key)=\($0.value)" })"
                } catch {
                    return "error \(error.code)"
                }
            }
        }
        #expect(outcomes[.sqlite] == outcomes[.memory])
    }

    // MARK: Endpoints

    @Test("insert, read, list and delete endpoints", arguments: StoreKind.allCases)
    func endpoints(kind: StoreKind) throws {
        try kind.withStore { store in
            let rich = richEndpoint("Endpoint-1")
            let plain = Fixtures.endpoint("endpoint-2")
            try store.insertEndpoint(rich, tags: [Tag(key: "team", value: "ml")])
            try store.insertEndpoint(plain, tags: [])

            #expect(try store.endpoint(named: "Endpoint-1") == rich)
            #expect(try store.endpoint(named: "endpoint-1") == rich)
            #expect(try store.endpoint(named: "endpoint-3") == nil)
            #expect(try store.endpoints().sorted { $0.name < $1.name } == [rich, plain])
            #expect(try store.tags(of: rich.arn) == [Tag(key: "team", value: "ml")])

            #expect(try store.deleteEndpoint(named: "ENDPOINT-1") == true)
            #expect(try store.deleteEndpoint(named: "endpoint-1") == false)
            #expect(try store.endpoint(named: "endpoint-1") == nil)
            #expect(try store.endpoints() == [plain])
        }
    }

    @Test("a duplicate endpoint name, in any case, is refused", arguments: StoreKind.allCases)
    func duplicateEndpoint(kind: StoreKind) throws {
        try kind.withStore { store in
            let original = Fixtures.endpoint("Endpoint-1")
            try store.insertEndpoint(original, tags: [Tag(key: "a", value: "1")])
            for duplicate in ["Endpoint-1", "endpoint-1", "ENDPOINT-1"] {
                let error = #expect(throws: StoreError.self) {
                    try store.insertEndpoint(richEndpoint(duplicate), tags: [])
                }
                #expect(error?.code == .alreadyExists)
                #expect(error?.message == "Cannot create already existing endpoint \"\(original.arn)\".")
            }
            #expect(try store.endpoints() == [original])
            #expect(try store.tags(of: original.arn) == [Tag(key: "a", value: "1")])
        }
    }

    @Test("updateEndpoint changes the stored record and returns the body's value", arguments: StoreKind.allCases)
    func updateEndpoint(kind: StoreKind) throws {
        try kind.withStore { store in
            try store.insertEndpoint(Fixtures.endpoint("e", status: .creating), tags: [])
            let result = try store.updateEndpoint(named: "E") { record throws(ServiceError) -> Int in
                record.status = .inService
                record.generation += 1
                record.lastModifiedTime = Fixtures.time(60)
                return record.generation
            }
            #expect(result == 2)
            let stored = try #require(try store.endpoint(named: "e"))
            #expect(stored.status == .inService)
            #expect(stored.generation == 2)
            #expect(stored.lastModifiedTime == Fixtures.time(60))
        }
    }

    @Test("updateEndpoint on a missing endpoint returns nil without calling the body", arguments: StoreKind.allCases)
    func updateMissingEndpoint(kind: StoreKind) throws {
        try kind.withStore { store in
            try store.insertEndpoint(Fixtures.endpoint("other"), tags: [])
            var called = false
            let result = try store.updateEndpoint(named: "missing") { _ throws(ServiceError) -> Int in
                called = true
                return 1
            }
            #expect(result == nil)
            #expect(!called)
            #expect(try store.endpoint(named: "missing") == nil)
        }
    }

    @Test("updateEndpoint rethrows the body's ServiceError and writes nothing", arguments: StoreKind.allCases)
    func updateEndpointThrows(kind: StoreKind) throws {
        try kind.withStore { store in
            let original = richEndpoint("e")
            try store.insertEndpoint(original, tags: [])
            let thrown = ServiceError(
                code: "ValidationException",
                message: "Cannot update in-progress endpoint.",
                status: 400,
                extraFields: ["Detail": .number(1)]
            )
            #expect(throws: thrown) {
                try store.updateEndpoint(named: "e") { record throws(ServiceError) -> Void in
                    record.status = .failed
                    record.generation = 99
                    record.variants = []
                    throw thrown
                }
            }
            #expect(try store.endpoint(named: "e") == original)

            // The store still works after the rollback.
            _ = try store.updateEndpoint(named: "e") { record throws(ServiceError) in record.generation = 8 }
            #expect(try store.endpoint(named: "e")?.generation == 8)
        }
    }

    @Test("concurrent updates of one endpoint are each applied once", arguments: StoreKind.allCases)
    func concurrentUpdates(kind: StoreKind) throws {
        try kind.withStore { store in
            try store.insertEndpoint(Fixtures.endpoint("e", generation: 0), tags: [])
            let failures = Failures()
            DispatchQueue.concurrentPerform(iterations: 64) { _ in
                do throws(ServiceError) {
                    _ = try store.updateEndpoint(named: "e") { record throws(ServiceError) in record.generation += 1 }
                } catch {
                    failures.add(error)
                }
            }
            #expect(failures.all.isEmpty)
            #expect(try store.endpoint(named: "e")?.generation == 64)
        }
    }
}

/// Errors collected from several threads.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [ServiceError] = []
    func add(_ error: ServiceError) { lock.withLock { errors.append(error) } }
    var all: [ServiceError] { lock.withLock { errors } }
}
