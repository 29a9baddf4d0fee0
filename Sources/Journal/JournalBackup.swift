import CSQLite
import Foundation

/// `accessgw backup FILE`: a consistent copy of the journal made with SQLite's online backup API while the
/// daemon keeps writing. A plain `cp journal.db` misses every event still in the WAL; the backup API reads the
/// database through a read transaction (WAL included) and writes a self-contained file in rollback-journal mode.
public enum JournalBackup {
    public struct Outcome: Sendable {
        /// Events in the copy.
        public var events: Int64
        /// Unpublished events in the copy.
        public var pending: Int64
        /// The copy's size.
        public var bytes: Int64
    }

    /// Copies the journal at `source` into `destination` (written as `destination.partial`, checked, then renamed,
    /// so an interrupted backup never leaves a file that looks complete). Refuses to overwrite an existing file.
    public static func run(source: String, destination: String) throws -> Outcome {
        guard !FileManager.default.fileExists(atPath: destination) else {
            throw SQLiteError(code: 0, message: "\(destination) exists: choose a new file name", statement: "backup", path: source)
        }
        _ = try JournalReader(path: source)  // refuses a file that is not an accessgw journal
        let partial = destination + ".partial"
        unlink(partial)
        Journal.createPrivately(partial)  // 0640 like the journal: a copy of residents' data is no more public
        do {
            let from = try SQLiteConnection(path: source, readOnly: true)
            try from.setBusyTimeout(milliseconds: 5000)
            let to = try SQLiteConnection(path: partial, readOnly: false)
            try to.copy(from: from)
            // The command request ids live beside the journal (CommandClaimStore): the copy carries them in its own
            // command tables, which a journal opened from it hands back to a new store.
            try CommandClaimStore.copy(storeAt: CommandClaimStore.path(forJournal: source), into: to)
            try to.execute("PRAGMA journal_mode = DELETE")
            let check = try to.query("PRAGMA quick_check") { $0.text(0) }
            guard check == ["ok"] else {
                throw SQLiteError(code: 0, message: "the copy fails its integrity check: \(check.prefix(3).joined(separator: "; "))",
                                  statement: "PRAGMA quick_check", path: partial)
            }
            let outcome = Outcome(events: try to.scalar("SELECT count(*) FROM events") ?? 0,
                                  pending: Int64(try to.pendingCount()),
                                  bytes: try to.sizeInUse())
            guard rename(partial, destination) == 0 else {
                throw SQLiteError(code: errno, message: "cannot rename to \(destination): \(String(cString: strerror(errno)))",
                                  statement: "backup", path: partial)
            }
            return outcome
        } catch {
            unlink(partial)
            throw error
        }
    }
}

extension SQLiteConnection {
    /// Copies every page of `source` into this database in one step (`sqlite3_backup_step(-1)`), so the copy is
    /// one read transaction of the source: a consistent snapshot even while another process commits. Retries
    /// while the source is locked (SQLITE_BUSY/SQLITE_LOCKED) for up to 10 s.
    func copy(from source: SQLiteConnection) throws {
        guard let backup = sqlite3_backup_init(handle, "main", source.handle, "main") else {
            try check(sqlite3_errcode(handle), "sqlite3_backup_init")
            return
        }
        var rc: Int32 = SQLITE_OK
        let deadline = Date().addingTimeInterval(10)
        repeat {
            rc = sqlite3_backup_step(backup, -1)
            if rc == SQLITE_BUSY || rc == SQLITE_LOCKED { usleep(20_000) }
        } while (rc == SQLITE_BUSY || rc == SQLITE_LOCKED || rc == SQLITE_OK) && Date() < deadline
        let finish = sqlite3_backup_finish(backup)
        if rc != SQLITE_DONE { try check(rc == SQLITE_OK ? SQLITE_BUSY : rc, "sqlite3_backup_step") }
        try check(finish, "sqlite3_backup_finish")
    }
}
