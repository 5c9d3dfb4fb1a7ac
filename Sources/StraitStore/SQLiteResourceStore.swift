import Foundation
public import StraitCore

/// The SQLite store: one file in the data directory.
public final class SQLiteResourceStore: ResourceStore {
    private let db: SQLiteDatabase

    /// The schema version this code writes; an older file is migrated forward, a newer one refused.
    static let schemaVersion: Int64 = 2

    public init(path: String) throws(StoreError) {
        db = try SQLiteDatabase(path: path)
        try migrate()
    }

    private func migrate() throws(StoreError) {
        let version =
            try db.query("PRAGMA user_version").first?.first.flatMap { value -> Int64? in
                if case .integer(let v) = value { return v }
                return nil
            } ?? 0
        guard version <= Self.schemaVersion else {
            throw StoreError(
                .corrupt,
                "The database \(db.path) was written by a newer Strait (schema \(version)); upgrade Strait to open it."
            )
        }
        guard version < Self.schemaVersion else { return }
        try db.transaction { () throws(StoreError) in
            try db.execute(
                """
                CREATE TABLE IF NOT EXISTS documents (
                    type TEXT NOT NULL, name TEXT NOT NULL COLLATE NOCASE, arn TEXT NOT NULL,
                    creation_time REAL NOT NULL, body TEXT NOT NULL, PRIMARY KEY (type, name))
                """
            )
            try db.execute(
                """
                CREATE TABLE IF NOT EXISTS endpoints (
                    name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE, arn TEXT NOT NULL, body TEXT NOT NULL)
                """
            )
            try db.execute(
                """
                CREATE TABLE IF NOT EXISTS tags (
                    arn TEXT NOT NULL, position INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                    PRIMARY KEY (arn, key))
                """
            )
            // Schema 2: the EC2 network, one document.
            try db.execute(
                "CREATE TABLE IF NOT EXISTS network (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL)"
            )
            try db.execute("PRAGMA user_version = \(Self.schemaVersion)")
        }
    }

    public func insert(_ record: DocumentRecord, tags: [Tag]) throws(StoreError) {
        try db.transaction { () throws(StoreError) in
            let existing = try db.query(
                "SELECT arn FROM documents WHERE type = ? AND name = ?",
                [.text(record.type.rawValue), .text(record.name)]
            )
            if let arn = existing.first?.first?.text {
                throw StoreError(.alreadyExists, "Cannot create already existing \(record.type.noun) \"\(arn)\".")
            }
            try db.execute(
                "INSERT INTO documents (type, name, arn, creation_time, body) VALUES (?, ?, ?, ?, ?)",
                [
                    .text(record.type.rawValue), .text(record.name), .text(record.arn),
                    .real(record.creationTime.timeIntervalSince1970), .text(record.document.serialized()),
                ]
            )
            try replaceTags(tags, of: record.arn)
        }
    }

    public func document(_ type: ResourceType, named name: String) throws(StoreError) -> DocumentRecord? {
        try db.query(
            "SELECT name, arn, creation_time, body FROM documents WHERE type = ? AND name = ?",
            [.text(type.rawValue), .text(name)]
        ).first.map { row throws(StoreError) in try decodeDocument(type, row) }
    }

    public func documents(_ type: ResourceType) throws(StoreError) -> [DocumentRecord] {
        var records: [DocumentRecord] = []
        for row in try db.query(
            "SELECT name, arn, creation_time, body FROM documents WHERE type = ?",
            [.text(type.rawValue)]
        ) {
            records.append(try decodeDocument(type, row))
        }
        return records
    }

    public func deleteDocument(_ type: ResourceType, named name: String) throws(StoreError) -> Bool {
        try db.transaction { () throws(StoreError) -> Bool in
            guard
                let arn = try db.query(
                    "SELECT arn FROM documents WHERE type = ? AND name = ?",
                    [.text(type.rawValue), .text(name)]
                ).first?.first?.text
            else { return false }
            try db.execute("DELETE FROM documents WHERE type = ? AND name = ?", [.text(type.rawValue), .text(name)])
            try db.execute("DELETE FROM tags WHERE arn = ?", [.text(arn)])
            return true
        }
    }

    public func insertEndpoint(_ record: EndpointRecord, tags: [Tag]) throws(StoreError) {
        let body = try encode(record)
        try db.transaction { () throws(StoreError) in
            if let arn = try db.query("SELECT arn FROM endpoints WHERE name = ?", [.text(record.name)]).first?.first?
                .text
            {
                throw StoreError(.alreadyExists, "Cannot create already existing endpoint \"\(arn)\".")
            }
            try db.execute(
                "INSERT INTO endpoints (name, arn, body) VALUES (?, ?, ?)",
                [.text(record.name), .text(record.arn), .text(body)]
            )
            try replaceTags(tags, of: record.arn)
        }
    }

    public func endpoint(named name: String) throws(StoreError) -> EndpointRecord? {
        guard let body = try db.query("SELECT body FROM endpoints WHERE name = ?", [.text(name)]).first?.first?.text
        else { return nil }
        return try decode(body)
    }

    public func endpoints() throws(StoreError) -> [EndpointRecord] {
        var records: [EndpointRecord] = []
        for row in try db.query("SELECT body FROM endpoints") {
            guard let body = row.first?.text else { throw StoreError(.corrupt, "An endpoint row has no body.") }
            records.append(try decode(body))
        }
        return records
    }

    public func updateEndpoint<T>(
        named name: String,
        _ body: (inout EndpointRecord) throws(ServiceError) -> T
    ) throws(ServiceError) -> T? {
        // The body's ServiceError passes through unchanged; store failures become the service's internal error.
        var bodyError: ServiceError?
        do throws(StoreError) {
            return try db.transaction { () throws(StoreError) -> T? in
                guard
                    let text = try db.query("SELECT body FROM endpoints WHERE name = ?", [.text(name)]).first?.first?
                        .text
                else { return nil }
                var record = try decode(text)
                let value: T
                do throws(ServiceError) {
                    value = try body(&record)
                } catch {
                    bodyError = error
                    throw StoreError(.unavailable, "rolled back")
                }
                try db.execute(
                    "UPDATE endpoints SET body = ? WHERE name = ?",
                    [.text(try encode(record)), .text(name)]
                )
                return value
            }
        } catch {
            throw bodyError ?? error.serviceError
        }
    }

    public func deleteEndpoint(named name: String) throws(StoreError) -> Bool {
        try db.transaction { () throws(StoreError) -> Bool in
            guard let arn = try db.query("SELECT arn FROM endpoints WHERE name = ?", [.text(name)]).first?.first?.text
            else { return false }
            try db.execute("DELETE FROM endpoints WHERE name = ?", [.text(name)])
            try db.execute("DELETE FROM tags WHERE arn = ?", [.text(arn)])
            return true
        }
    }

    public func tags(of arn: String) throws(StoreError) -> [Tag] {
        try db.query("SELECT key, value FROM tags WHERE arn = ? ORDER BY position", [.text(arn)]).map {
            row throws(StoreError) in
            guard row.count == 2, let key = row[0].text, let value = row[1].text else {
                throw StoreError(.corrupt, "A tag row of \(arn) is malformed.")
            }
            return Tag(key: key, value: value)
        }
    }

    public func addTags(_ tags: [Tag], to arn: String, limit: Int) throws(StoreError) {
        try db.transaction { () throws(StoreError) in
            let merged = try self.tags(of: arn).merging(tags)
            guard merged.count <= limit else {
                throw StoreError(
                    .limitExceeded,
                    "The resource \(arn) would have \(merged.count) tags; at most \(limit) are allowed."
                )
            }
            try replaceTags(merged, of: arn)
        }
    }

    public func deleteTags(keys: [String], from arn: String) throws(StoreError) {
        try db.transaction { () throws(StoreError) in
            for key in keys { try db.execute("DELETE FROM tags WHERE arn = ? AND key = ?", [.text(arn), .text(key)]) }
        }
    }

    public func networkDocument() throws(StoreError) -> String? {
        try db.query("SELECT body FROM network WHERE id = 1").first?.first?.text
    }

    public func saveNetworkDocument(_ document: String) throws(StoreError) {
        try db.transaction { () throws(StoreError) in
            try db.execute("INSERT OR REPLACE INTO network (id, body) VALUES (1, ?)", [.text(document)])
        }
    }

    private func replaceTags(_ tags: [Tag], of arn: String) throws(StoreError) {
        try db.execute("DELETE FROM tags WHERE arn = ?", [.text(arn)])
        for (position, tag) in [Tag]().merging(tags).enumerated() {
            try db.execute(
                "INSERT INTO tags (arn, position, key, value) VALUES (?, ?, ?, ?)",
                [.text(arn), .integer(Int64(position)), .text(tag.key), .text(tag.value)]
            )
        }
    }

    private func decodeDocument(_ type: ResourceType, _ row: [SQLiteValue]) throws(StoreError) -> DocumentRecord {
        guard row.count == 4, let name = row[0].text, let arn = row[1].text, let time = row[2].real,
            let body = row[3].text
        else { throw StoreError(.corrupt, "A \(type.noun) row is malformed.") }
        let document: JSONValue
        do { document = try JSONParser.parse(body) } catch {
            throw StoreError(.corrupt, "The stored \(type.noun) \(name) is not valid JSON: \(error.message).")
        }
        return DocumentRecord(
            type: type,
            name: name,
            arn: arn,
            creationTime: Date(timeIntervalSince1970: time),
            document: document
        )
    }

    private func encode(_ record: EndpointRecord) throws(StoreError) -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = .sortedKeys
        do { return String(decoding: try encoder.encode(record), as: UTF8.self) } catch {
            throw StoreError(.corrupt, "Cannot encode endpoint \(record.name): \(error)")
        }
    }

    private func decode(_ body: String) throws(StoreError) -> EndpointRecord {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        do { return try decoder.decode(EndpointRecord.self, from: Data(body.utf8)) } catch {
            throw StoreError(.corrupt, "A stored endpoint cannot be read: \(error)")
        }
    }
}

extension ResourceType {
    /// The words SageMaker's messages use for the resource type.
    public var noun: String {
        switch self {
        case .model: "model"
        case .endpointConfig: "endpoint configuration"
        case .endpoint: "endpoint"
        }
    }
}
