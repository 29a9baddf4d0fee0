import CSQLite

/// An SQLite failure, naming the statement and SQLite's own message: operators see which query failed and why.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    /// SQLite's (extended) result code, such as 5 (SQLITE_BUSY) or 2067 (SQLITE_CONSTRAINT_UNIQUE).
    public var code: Int32
    /// `sqlite3_errmsg` at the time of the failure.
    public var message: String
    /// The SQL statement (or the operation, for opening) that failed.
    public var statement: String
    /// The database file.
    public var path: String

    public var description: String {
        "journal \(path): \(message) (sqlite code \(code)) in \(statement)"
    }
}

/// A value bound to a statement parameter.
enum SQLiteValue {
    case int(Int64)
    case text(String)
    case null
}

/// One SQLite database connection (`sqlite3*`), closed in deinit.
///
/// Every call that can fail goes through `check(_:_:)`, which turns a result code into an `SQLiteError` naming the
/// statement. Prepared statements are cached by their SQL text and finalised in deinit. Not thread-safe: the owner
/// serialises access (the `Journal` with its mutex, the `JournalReader` likewise).
final class SQLiteConnection {
    let path: String
    let handle: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]
    /// Where `runRows` copies the texts of one statement, bound without SQLite's own copy of each.
    private let textArena = TextArena()
    /// Each multi-row statement (also in `statements`) by its head, tail and row count (`runRows`).
    private var multiRowStatements: [MultiRowKey: (sql: String, statement: OpaquePointer)] = [:]

    private struct MultiRowKey: Hashable {
        var head: String
        var tail: String
        var rows: Int
    }

    /// Opens `path` with `sqlite3_open_v2`; `readOnly` uses SQLITE_OPEN_READONLY, otherwise the file is created.
    init(path: String, readOnly: Bool) throws {
        self.path = path
        var db: OpaquePointer?
        // NOMUTEX: the owner serialises every call, so SQLite's own per-connection mutex would be redundant.
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close_v2(db)
            throw SQLiteError(code: rc, message: message, statement: readOnly ? "open (read-only)" : "open", path: path)
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// The funnel: throws an `SQLiteError` for any result code other than OK, ROW and DONE.
    @discardableResult
    func check(_ rc: Int32, _ sql: String) throws(SQLiteError) -> Int32 {
        switch rc & 0xFF {
        case SQLITE_OK, SQLITE_ROW, SQLITE_DONE: return rc
        default: throw SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(handle)), statement: sql, path: path)
        }
    }

    /// Runs one or more statements without results (`sqlite3_exec`): schema, pragmas, BEGIN/COMMIT.
    func execute(_ sql: String) throws(SQLiteError) {
        try check(sqlite3_exec(handle, sql, nil, nil, nil), sql)
    }

    /// Sets how long a statement waits for another connection's lock before failing with SQLITE_BUSY.
    func setBusyTimeout(milliseconds: Int32) throws(SQLiteError) {
        try check(sqlite3_busy_timeout(handle, milliseconds), "busy_timeout")
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE (`sqlite3_changes`).
    var changes: Int { Int(sqlite3_changes(handle)) }

    /// Runs `body` with the cached prepared statement for `sql`, bound to `values`; the statement is reset afterwards,
    /// which also ends the read transaction an unfinished SELECT would otherwise keep open.
    func withStatement<R>(_ sql: String, _ values: [SQLiteValue] = [],
                          _ body: (inout Statement) throws -> R) throws -> R {
        let raw = try prepared(sql)
        defer {
            sqlite3_reset(raw)
            sqlite3_clear_bindings(raw)
        }
        var statement = Statement(handle: raw, sql: sql, connection: self)
        for (index, value) in values.enumerated() {
            let position = Int32(index + 1)
            switch value {
            case let .int(number): try check(sqlite3_bind_int64(raw, position, number), sql)
            case let .text(text): try check(sqlite3_bind_text(raw, position, text, -1, sqliteTransient), sql)
            case .null: try check(sqlite3_bind_null(raw, position), sql)
            }
        }
        return try body(&statement)
    }

    /// Runs a statement that returns no rows; returns the number of rows it changed.
    @discardableResult
    func run(_ sql: String, _ values: [SQLiteValue] = []) throws -> Int {
        try withStatement(sql, values) { statement in
            while try statement.step() {}
            return changes
        }
    }

    /// Runs `head VALUES (…), (…), … tail` for `count` rows of `columns` values each, up to `perStatement` rows a
    /// statement: one statement per commit where a statement per row would repeat SQLite's per-statement work. The
    /// rows of one call must not conflict with each other (an upsert sees each row in turn). `bind(row, binder)`
    /// binds a row's values in column order straight into the statement, with no array of values per row; the
    /// statement of each row count is prepared once.
    func runRows(_ head: String, count: Int, columns: Int, _ tail: String, perStatement: Int = 64,
                 bind: (Int, inout RowBinder) throws -> Void) throws {
        var start = 0
        while start < count {
            let rows = min(count - start, perStatement)
            let key = MultiRowKey(head: head, tail: tail, rows: rows)
            let (sql, raw): (String, OpaquePointer)
            if let known = multiRowStatements[key] {
                (sql, raw) = known
            } else {
                let row = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
                sql = head + " VALUES " + Array(repeating: row, count: rows).joined(separator: ", ") + " " + tail
                raw = try prepared(sql)
                multiRowStatements[key] = (sql, raw)
            }
            // The texts stay in the arena until the statement is reset and its bindings cleared.
            defer {
                sqlite3_reset(raw)
                sqlite3_clear_bindings(raw)
                textArena.reset()
            }
            var binder = RowBinder(handle: raw, sql: sql, connection: self, arena: textArena)
            for index in start..<(start + rows) { try bind(index, &binder) }
            guard binder.position == Int32(rows * columns) else {
                throw SQLiteError(code: SQLITE_MISUSE, message: "\(binder.position) values bound for \(rows * columns)",
                                  statement: sql, path: path)
            }
            var statement = Statement(handle: raw, sql: sql, connection: self)
            while try statement.step() {}
            start += rows
        }
    }

    /// Binds a multi-row statement's parameters in order (see `runRows(_:count:columns:_:perStatement:bind:)`).
    struct RowBinder {
        let handle: OpaquePointer
        let sql: String
        unowned let connection: SQLiteConnection
        unowned let arena: TextArena
        /// The number of parameters bound so far.
        private(set) var position: Int32 = 0

        mutating func bind(_ value: Int64) throws(SQLiteError) {
            position += 1
            try connection.check(sqlite3_bind_int64(handle, position, value), sql)
        }

        /// Binds `value`'s UTF-8 bytes, copied into the arena (SQLITE_STATIC: no malloc and copy by SQLite per value).
        mutating func bind(_ value: String) throws(SQLiteError) {
            position += 1
            var text = value
            let bytes = text.withUTF8 { arena.copy($0) }
            try connection.check(sqlite3_bind_text(handle, position, bytes.baseAddress, Int32(bytes.count), nil), sql)
        }

        mutating func bindNull() throws(SQLiteError) {
            position += 1
            try connection.check(sqlite3_bind_null(handle, position), sql)
        }
    }

    /// The rows of a query, each turned into a value by `row`.
    func query<R>(_ sql: String, _ values: [SQLiteValue] = [], _ row: (Statement) throws -> R) throws -> [R] {
        try withStatement(sql, values) { statement in
            var rows: [R] = []
            while try statement.step() { rows.append(try row(statement)) }
            return rows
        }
    }

    /// The first column of the first row as an integer, or nil when there is no row or it is NULL.
    func scalar(_ sql: String, _ values: [SQLiteValue] = []) throws -> Int64? {
        try withStatement(sql, values) { statement in
            try statement.step() ? statement.optionalInt(0) : nil
        }
    }

    /// Runs `body` in one transaction (BEGIN IMMEDIATE … COMMIT), rolling back if it throws.
    func transaction<R>(_ body: () throws -> R) throws -> R {
        // Prepared once (the statement cache), not parsed again for every transaction as `execute` would.
        try run("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try run("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    private func prepared(_ sql: String) throws(SQLiteError) -> OpaquePointer {
        if let cached = statements[sql] { return cached }
        var raw: OpaquePointer?
        try check(sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil), sql)
        guard let raw else {
            throw SQLiteError(code: SQLITE_MISUSE, message: "empty statement", statement: sql, path: path)
        }
        statements[sql] = raw
        return raw
    }

    /// One prepared statement being stepped; only valid inside `withStatement`.
    struct Statement {
        let handle: OpaquePointer
        let sql: String
        unowned let connection: SQLiteConnection

        /// `sqlite3_step`: true when a row is available, false when done.
        mutating func step() throws(SQLiteError) -> Bool {
            try connection.check(sqlite3_step(handle), sql) == SQLITE_ROW
        }

        func int(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

        func optionalInt(_ column: Int32) -> Int64? {
            sqlite3_column_type(handle, column) == SQLITE_NULL ? nil : sqlite3_column_int64(handle, column)
        }

        func text(_ column: Int32) -> String {
            guard let bytes = sqlite3_column_text(handle, column) else { return "" }
            let count = Int(sqlite3_column_bytes(handle, column))
            return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
        }

        func optionalText(_ column: Int32) -> String? {
            sqlite3_column_type(handle, column) == SQLITE_NULL ? nil : text(column)
        }
    }
}

/// Memory for the texts bound to one statement, in chunks kept from statement to statement: `copy` never moves what
/// it copied before `reset`, so the pointers SQLite holds stay valid until the statement is done.
final class TextArena {
    private var chunks: [UnsafeMutableRawBufferPointer] = []
    private var chunk = 0
    private var used = 0
    static let chunkSize = 1 << 16

    deinit { for chunk in chunks { chunk.deallocate() } }

    /// A copy of `bytes` (never a nil address, even when empty) valid until `reset`.
    func copy(_ bytes: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<CChar> {
        while chunk < chunks.count, chunks[chunk].count - used < bytes.count {
            chunk += 1
            used = 0
        }
        if chunk == chunks.count {
            chunks.append(.allocate(byteCount: max(Self.chunkSize, bytes.count), alignment: 1))
            used = 0
        }
        let start = chunks[chunk].baseAddress!.advanced(by: used)
        if let source = bytes.baseAddress { start.copyMemory(from: source, byteCount: bytes.count) }
        used += bytes.count
        return UnsafeBufferPointer(start: start.assumingMemoryBound(to: CChar.self), count: bytes.count)
    }

    func reset() {
        chunk = 0
        used = 0
    }
}

/// SQLITE_TRANSIENT: SQLite copies bound text before the call returns.
private let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
