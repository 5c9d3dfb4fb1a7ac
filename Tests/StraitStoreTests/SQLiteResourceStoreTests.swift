import Foundation
import StraitCore
import StraitStore
import StraitTestSupport
import Testing

/// What only the SQLite store does: keep data in a file, and refuse files it cannot trust.
@Suite("SQLiteResourceStore")
struct SQLiteResourceStoreTests {
    @Test("data survives closing and reopening the file")
    func reopen() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("strait.db")
            let model = documentRecord(.model, "Model-1")
            let config = documentRecord(.endpointConfig, "config-1", at: Fixtures.time(1))
            let endpoint = richEndpoint("Endpoint-1")
            do {
                let store = try SQLiteResourceStore(path: path)
                try store.insert(model, tags: [Tag(key: "b", value: "2"), Tag(key: "a", value: "1")])
                try store.insert(config, tags: [])
                try store.insertEndpoint(endpoint, tags: [Tag(key: "e", value: "")])
                _ = try store.updateEndpoint(named: "endpoint-1") { record throws(ServiceError) in
                    record.status = .inService
                }
            }
            var expected = endpoint
            expected.status = .inService

            let reopened = try SQLiteResourceStore(path: path)
            #expect(try reopened.document(.model, named: "model-1") == model)
            #expect(try reopened.documents(.endpointConfig) == [config])
            #expect(try reopened.endpoint(named: "endpoint-1") == expected)
            #expect(try reopened.tags(of: model.arn) == [Tag(key: "b", value: "2"), Tag(key: "a", value: "1")])
            #expect(try reopened.tags(of: endpoint.arn) == [Tag(key: "e", value: "")])
            // Names stay unique across the reopen.
            #expect(throws: StoreError.self) { try reopened.insert(documentRecord(.model, "MODEL-1"), tags: []) }
        }
    }

    @Test("a file written by a newer schema is refused as corrupt and left alone")
    func newerSchema() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("strait.db")
            do {
                let database = try SQLiteDatabase(path: path)
                try database.execute("CREATE TABLE future (x)")
                try database.execute("PRAGMA user_version = 99")
            }
            let error = #expect(throws: StoreError.self) { try SQLiteResourceStore(path: path) }
            #expect(error?.code == .corrupt)
            #expect(error?.message.contains("99") == true)

            let database = try SQLiteDatabase(path: path)
            #expect(try database.query("PRAGMA user_version") == [[.integer(99)]])
            #expect(try database.query("SELECT name FROM sqlite_master WHERE name = 'endpoints'").isEmpty)
        }
    }

    @Test("a file of the current schema opens again without migrating")
    func currentSchema() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("strait.db")
            _ = try SQLiteResourceStore(path: path)
            _ = try SQLiteResourceStore(path: path)
            let database = try SQLiteDatabase(path: path)
            #expect(try database.query("PRAGMA user_version") == [[.integer(2)]])
        }
    }

    @Test("a schema 1 file gains the network table and keeps its records")
    func migratesFromSchema1() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("strait.db")
            do {
                let store = try SQLiteResourceStore(path: path)
                try store.insertEndpoint(Fixtures.endpoint("kept"), tags: [])
                let database = try SQLiteDatabase(path: path)
                try database.execute("DROP TABLE network")
                try database.execute("PRAGMA user_version = 1")
            }
            let store = try SQLiteResourceStore(path: path)
            #expect(try store.endpoint(named: "kept") != nil)
            #expect(try store.networkDocument() == nil)
            try store.saveNetworkDocument(#"{"vpcs":[]}"#)
            try store.saveNetworkDocument(#"{"vpcs":[1]}"#)
            #expect(try SQLiteResourceStore(path: path).networkDocument() == #"{"vpcs":[1]}"#)
            #expect(try SQLiteDatabase(path: path).query("PRAGMA user_version") == [[.integer(2)]])
        }
    }

    @Test(
        "a corrupt endpoint body is reported as corrupt, not a crash",
        arguments: ["garbage", "{}", #"{"name":1}"#, ""]
    )
    func corruptEndpoint(body: String) throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("strait.db")
            let store = try SQLiteResourceStore(path: path)
            try store.insertEndpoint(Fixtures.endpoint("e"), tags: [])
            try SQLiteDatabase(path: path).execute("UPDATE endpoints SET body = ? WHERE name = 'e'", [.text(body)])

            let read = #expect(throws: StoreError.self) { try store.endpoint(named: "e") }
            #expect(read?.code == .corrupt)
            let list = #expect(throws: StoreError.self) { try store.endpoints() }
            #expect(list?.code == .corrupt)
            // Through updateEndpoint the client sees an internal failure, and the body never runs.
            #expect(throws: ServiceError.internalFailure()) {
                try store.updateEndpoint(named: "e") { _ throws(ServiceError) in Issue.record("body ran") }
            }
            // The endpoint can still be deleted.
            #expect(try store.deleteEndpoint(named: "e"))
        }
    }

    @Test("a corrupt document body is reported as corrupt")
    func corruptDocument() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("strait.db")
            let store = try SQLiteResourceStore(path: path)
            try store.insert(documentRecord(.model, "m"), tags: [])
            try SQLiteDatabase(path: path).execute("UPDATE documents SET body = '{\"a\":' WHERE name = 'm'")

            let error = #expect(throws: StoreError.self) { try store.document(.model, named: "m") }
            #expect(error?.code == .corrupt)
            #expect(throws: StoreError.self) { try store.documents(.model) }
        }
    }

    @Test("a file that is not a database is refused")
    func notADatabase() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("strait.db")
            try Data(String(repeating: "not a database ", count: 100).utf8).write(to: URL(fileURLWithPath: path))
            #expect(throws: StoreError.self) { try SQLiteResourceStore(path: path) }
        }
    }

    @Test("a path in a missing directory is refused as unavailable")
    func missingDirectory() throws {
        try withTemporaryDirectory { directory in
            let error = #expect(throws: StoreError.self) {
                try SQLiteResourceStore(path: directory.path("missing/strait.db"))
            }
            #expect(error?.code == .unavailable)
        }
    }
}
