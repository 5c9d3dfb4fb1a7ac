import CSQLite
import Foundation

/// A value bound to or read from an SQL statement.
public enum SQLiteValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    public var text: String? {
        if case .text(let value) = self { return value }
        return nil
    }

    public var real: Double? {
        switch self {
        case .real(let value): value
        case .integer(let value): Double(value)
        default: nil
        }
    }
}

/// One SQLite database file: a thin, serialized wrapper over the system libsqlite3.
///
/// Every call takes the connection's lock, so statements of different threads never interleave, and
/// ``transaction(_:)`` runs its body as one `BEGIN IMMEDIATE … COMMIT` (rolled back if the body throws).
// @unchecked Sendable: the connection handle is only touched while `lock` is held.
public final class SQLiteDatabase: @unchecked Sendable {
    private let handle: OpaquePointer
    private let lock = NSRecursiveLock()
    public let path: String

    /// Opens (creating if needed) the database at `path`, in WAL mode with full fsync on commit.
    public init(path: String) throws(StoreError) {
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw StoreError(.unavailable, "Cannot open the database \(path): \(message)")
        }
        self.handle = db
        self.path = path
        sqlite3_busy_timeout(db, 5000)
        try execute("PRAGMA journal_mode=WAL")
        try execute("PRAGMA synchronous=FULL")
        try execute("PRAGMA foreign_keys=ON")
    }

    deinit { sqlite3_close_v2(handle) }

    /// Runs a statement that returns no rows we need.
    public func execute(_ sql: String, _ parameters: [SQLiteValue] = []) throws(StoreError) {
        _ = try query(sql, parameters)
    }

    /// Runs a statement and returns every row.
    public func query(_ sql: String, _ parameters: [SQLiteValue] = []) throws(StoreError) -> [[SQLiteValue]] {
        lock.lock()
        defer { lock.unlock() }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw failure("prepare")
        }
        defer { sqlite3_finalize(statement) }
        for (offset, parameter) in parameters.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch parameter {
            case .null: rc = sqlite3_bind_null(statement, index)
            case .integer(let value): rc = sqlite3_bind_int64(statement, index, value)
            case .real(let value): rc = sqlite3_bind_double(statement, index, value)
            case .text(let value): rc = sqlite3_bind_text(statement, index, value, -1, SQLiteDatabase.transient)
            }
            guard rc == SQLITE_OK else { throw failure("bind") }
        }
        var rows: [[SQLiteValue]] = []
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw failure("step") }
            var row: [SQLiteValue] = []
            for column in 0..<sqlite3_column_count(statement) {
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: row.append(.integer(sqlite3_column_int64(statement, column)))
                case SQLITE_FLOAT: row.append(.real(sqlite3_column_double(statement, column)))
                case SQLITE_NULL: row.append(.null)
                default:
                    if let text = sqlite3_column_text(statement, column) {
                        row.append(.text(String(cString: text)))
                    } else {
                        row.append(.null)
                    }
                }
            }
            rows.append(row)
        }
        return rows
    }

    /// The number of rows the last statement changed.
    public func changes() -> Int {
        lock.lock()
        defer { lock.unlock() }
        return Int(sqlite3_changes(handle))
    }

    /// Runs `body` in one write transaction: all of its statements commit together or none do.
    public func transaction<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        lock.lock()
        defer { lock.unlock() }
        try execute("BEGIN IMMEDIATE")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    private func failure(_ step: String) -> StoreError {
        StoreError(.unavailable, "SQLite \(step) failed: \(String(cString: sqlite3_errmsg(handle)))")
    }

    // SQLITE_TRANSIENT: SQLite copies the bound text before the call returns.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}
