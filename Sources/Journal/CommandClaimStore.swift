import AccessModel
import Foundation
import Synchronization

/// The journal's memory of command request ids (SPEC 4.1 rule 7) in an SQLite file of its own beside the journal,
/// `JOURNAL.commands`, with its own connection, write lock and WAL.
///
/// A claim must be durable before its device write (a restart must not forget it), but it must not queue behind
/// the journal writer's batch commits, the publisher's marks, retention or a WAL checkpoint of the event tables:
/// SQLite admits one writer per database file, so in the journal's file a claim waited for whatever held the
/// writer (measured: tens of milliseconds while backlogs drain, SPEC 8). Here it waits only for other claims and
/// outcomes, each a few rows.
///
/// The journal's own `command_requests` and `command_counters` tables (schema version 3) stay as the portable
/// form: a journal that has rows there (one from before this file existed, or a restored `accessgw backup`, which
/// copies this file's rows into them) hands them over when the store opens, and then empties them.
final class CommandClaimStore: Sendable {
    let path: String
    private let connection: Mutex<SQLiteConnection>
    /// Which file `path` named when the store was opened: deleted or replaced, its ids vanish at the next start.
    let fileIdentity: FileIdentity?
    /// Whether this open created the file.
    let created: Bool

    /// `JOURNAL.commands` for the journal at `journalPath`.
    static func path(forJournal journalPath: String) -> String { journalPath + ".commands" }

    /// Version 2: request ids per issuer (SPEC 4.1 rule 7: ids of different issuers never collide) with the
    /// request's arguments, so that an id reused for another request is told apart from a redelivery.
    static let schemaVersion: Int64 = 2

    /// The command tables of the journal (its version 3), which carry ids into and out of the store: rows move
    /// between them column by column (`columns`).
    static let tables = """
        CREATE TABLE IF NOT EXISTS command_requests (
            id TEXT PRIMARY KEY,
            issuer TEXT NOT NULL,
            device TEXT NOT NULL,
            command TEXT NOT NULL,
            device_command_id INTEGER NOT NULL,
            status TEXT NOT NULL,
            reason TEXT,
            received_ms INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS command_requests_device_id ON command_requests (device, device_command_id);
        CREATE INDEX IF NOT EXISTS command_requests_received ON command_requests (received_ms);
        CREATE TABLE IF NOT EXISTS command_counters (
            device TEXT PRIMARY KEY,
            last_id INTEGER NOT NULL
        );
        """

    /// The store's own tables: requests keyed by issuer and id, with their arguments (canonical JSON, NULL when
    /// taken over from a journal, which has none).
    static let storeTables = """
        CREATE TABLE IF NOT EXISTS command_requests (
            issuer TEXT NOT NULL,
            id TEXT NOT NULL,
            device TEXT NOT NULL,
            command TEXT NOT NULL,
            args TEXT,
            device_command_id INTEGER NOT NULL,
            status TEXT NOT NULL,
            reason TEXT,
            received_ms INTEGER NOT NULL,
            PRIMARY KEY (issuer, id)
        );
        CREATE INDEX IF NOT EXISTS command_requests_device_id ON command_requests (device, device_command_id);
        CREATE INDEX IF NOT EXISTS command_requests_received ON command_requests (received_ms);
        CREATE TABLE IF NOT EXISTS command_counters (
            device TEXT PRIMARY KEY,
            last_id INTEGER NOT NULL
        );
        """

    /// Version 1 (ids global, no arguments) to 2: every row kept, its arguments unknown.
    static let upgradeToVersion2 = """
        ALTER TABLE command_requests RENAME TO command_requests_v1;
        DROP INDEX IF EXISTS command_requests_device_id;
        DROP INDEX IF EXISTS command_requests_received;
        \(storeTables)
        INSERT OR IGNORE INTO command_requests (\(columns)) SELECT \(columns) FROM command_requests_v1;
        DROP TABLE command_requests_v1;
        """

    /// The request columns the journal's tables and the store share.
    static let columns = "id, issuer, device, command, device_command_id, status, reason, received_ms"

    /// Opens (creating it 0640 like the journal) the store of the journal at `journalPath` and takes over the rows
    /// of the journal's own command tables; `emptyJournalTables` then deletes those (through the journal's writer)
    /// once the store has committed them.
    init(journalPath: String, busyTimeout: Duration = .seconds(5), emptyJournalTables: () throws -> Void) throws {
        path = Self.path(forJournal: journalPath)
        created = !FileManager.default.fileExists(atPath: path)
        Journal.createPrivately(path)
        let connection = try SQLiteConnection(path: path, readOnly: false)
        try connection.setBusyTimeout(milliseconds: Int32(busyTimeout.components.seconds * 1000))
        // WAL with synchronous=FULL: a claim is on disk when COMMIT returns, before the device write.
        try connection.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL")
        let version = try connection.scalar("PRAGMA user_version") ?? 0
        guard version <= Self.schemaVersion else {
            throw SQLiteError(code: 0, message: "command store version \(version) is newer than this accessgw (\(Self.schemaVersion))",
                              statement: "PRAGMA user_version", path: path)
        }
        try connection.transaction {
            try connection.execute(version == 1 ? Self.upgradeToVersion2 : Self.storeTables)
            try connection.execute("PRAGMA user_version = \(Self.schemaVersion)")
        }
        // The journal's rows: a request id already here keeps its row (it is the newer), a counter the higher id.
        // Idempotent, so a crash before the journal's tables are emptied only repeats it.
        try Self.merge(databaseAt: journalPath, into: connection, replacing: false)
        try emptyJournalTables()
        fileIdentity = FileIdentity(path: path)
        self.connection = Mutex(connection)
    }

    /// Merges the command rows of the database at `path` into those of `target` in one transaction: a request id
    /// both hold keeps the source's row when `replacing`, else the target's; a device counter keeps the higher id.
    static func merge(databaseAt path: String, into target: SQLiteConnection, replacing: Bool) throws {
        try target.run("ATTACH DATABASE ? AS source", [.text(path)])
        defer { try? target.execute("DETACH DATABASE source") }
        try target.transaction {
            try target.execute("""
                INSERT OR \(replacing ? "REPLACE" : "IGNORE") INTO main.command_requests (\(columns))
                    SELECT \(columns) FROM source.command_requests ORDER BY received_ms;
                INSERT INTO main.command_counters (device, last_id) SELECT device, last_id FROM source.command_counters WHERE true
                    ON CONFLICT (device) DO UPDATE SET last_id = max(last_id, excluded.last_id);
                """)
        }
    }

    func withConnection<R: Sendable>(_ body: (SQLiteConnection) throws -> R) throws -> R {
        try connection.withLock { try body($0) }
    }

    /// Copies the store at `storePath` (if there is one) into the command tables of the database `target`
    /// (a journal backup), so the backup carries the ids a restored journal must still refuse to execute again.
    static func copy(storeAt storePath: String, into target: SQLiteConnection) throws {
        guard FileManager.default.fileExists(atPath: storePath) else { return }
        try merge(databaseAt: storePath, into: target, replacing: true)
    }
}
