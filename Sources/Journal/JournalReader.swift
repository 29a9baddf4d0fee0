import AccessModel
import Synchronization

/// A read-only view of the journal for `accessgw tail` and `status`, safe to use while the daemon writes.
///
/// Opens with SQLITE_OPEN_READONLY. In WAL mode readers never block the writer nor wait for it; every query is its
/// own read transaction (statements are reset after use), so each call sees everything committed before it began.
public final class JournalReader: Sendable {
    public let path: String
    let connection: Mutex<SQLiteConnection>

    /// Opens the journal at `path` read-only; fails if it does not exist.
    public init(path: String, busyTimeout: Duration = .seconds(5)) throws {
        self.path = path
        let connection = try SQLiteConnection(path: path, readOnly: true)
        try connection.setBusyTimeout(milliseconds: Int32(busyTimeout.components.seconds * 1000))
        let version = try connection.scalar("PRAGMA user_version") ?? 0
        guard version == Int64(JournalSchema.version) else {
            throw SQLiteError(code: 0, message: version == 0 ? "not an accessgw journal (no schema)"
                                  : "journal schema version \(version), this program reads \(JournalSchema.version)",
                              statement: "PRAGMA user_version", path: path)
        }
        self.connection = Mutex(connection)
    }

    /// Events matching `filter`, oldest first: the newest `limit` of them, or with `afterJournalSeq` the first `limit`
    /// after it (so a follower pages forward without gaps).
    public func events(filter: JournalFilter) throws -> [StoredEvent] {
        var conditions: [String] = []
        var values: [SQLiteValue] = []
        if let after = filter.afterJournalSeq {
            conditions.append("jseq > ?")
            values.append(.int(after))
        }
        if !filter.devices.isEmpty {
            conditions.append("device IN (\(Array(repeating: "?", count: filter.devices.count).joined(separator: ", ")))")
            values += filter.devices.map { .text($0) }
        }
        if !filter.types.isEmpty {
            conditions.append("(" + Array(repeating: "type GLOB ?", count: filter.types.count).joined(separator: " OR ") + ")")
            values += filter.types.map { .text($0.sqliteGlob) }
        }
        if let since = filter.since {
            conditions.append("recorded_ms >= ?")
            values.append(.int(since.millisecondsSinceEpoch))
        }
        if let until = filter.until {
            conditions.append("recorded_ms < ?")
            values.append(.int(until.millisecondsSinceEpoch))
        }
        var sql = "SELECT \(SQLiteConnection.storedEventColumns) FROM events"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        let newestFirst = filter.limit != nil && filter.afterJournalSeq == nil
        sql += newestFirst ? " ORDER BY jseq DESC" : " ORDER BY jseq"
        if let limit = filter.limit {
            sql += " LIMIT ?"
            values.append(.int(Int64(max(0, limit))))
        }
        let rows = try connection.withLock { try $0.query(sql, values, SQLiteConnection.storedEvent) }
        return newestFirst ? rows.reversed() : rows
    }

    /// The highest journal sequence number handed out so far (0 for an empty journal): where `tail -f` starts.
    /// When the oldest event the journal still holds was recorded; nil for an empty journal.
    public func oldestRecorded() throws -> Timestamp? {
        try connection.withLock { try $0.scalar("SELECT min(recorded_ms) FROM events") }.map(Timestamp.init(millisecondsSinceEpoch:))
    }

    public func latestJournalSeq() throws -> Int64 {
        try connection.withLock { try $0.latestJournalSeq() }
    }

    /// The value the daemon stored under `key` with `Journal.setState`, and when.
    public func state(key: String) throws -> (value: String, updatedAt: Timestamp)? {
        try connection.withLock { try $0.state(key: key) }
    }

    /// The number of events not yet published.
    public func pendingCount() throws -> Int {
        try connection.withLock { try $0.pendingCount() }
    }

    /// The number of events the broker refused (never sent again).
    public func refusedCount() throws -> Int {
        try connection.withLock { try $0.refusedCount() }
    }

    /// Unpublished events per device.
    public func pendingCountByDevice() throws -> [String: Int] {
        try connection.withLock { try $0.pendingCountByDevice() }
    }

    /// The oldest event not yet published.
    public func oldestPending() throws -> StoredEvent? {
        try connection.withLock { try $0.oldestPending() }
    }

    /// Bytes of the database in use.
    public func sizeInUse() throws -> Int64 {
        try connection.withLock { try $0.sizeInUse() }
    }

    /// The highest (boot, seq) committed per device.
    public func deviceCursors() throws -> [String: DeviceCursor] {
        try connection.withLock { try $0.deviceCursors() }
    }

    /// Command outcomes (`command.written`, `command.rejected`, …) journalled since `since`, by type.
    public func commandOutcomes(since: Timestamp) throws -> [String: Int] {
        try connection.withLock { connection in
            let rows = try connection.query("""
                SELECT type, count(*) FROM events WHERE recorded_ms >= ? AND type LIKE 'command.%' GROUP BY type
                """, [.int(since.millisecondsSinceEpoch)]) { ($0.text(0), Int($0.int(1))) }
            return Dictionary(rows, uniquingKeysWith: +)
        }
    }
}

extension NamePattern {
    /// The same pattern for SQLite's GLOB, which also knows `[...]` classes: a `[` is escaped to match itself.
    var sqliteGlob: String { String(text.flatMap { $0 == "[" ? Array("[[]") : [$0] }) }
}
