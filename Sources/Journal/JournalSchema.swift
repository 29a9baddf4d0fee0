/// The journal's tables, versioned with `PRAGMA user_version`.
enum JournalSchema {
    static let version = 1

    /// Settings that hold for a connection's lifetime (not stored in the file).
    static let connectionPragmas = """
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = FULL;
        PRAGMA foreign_keys = OFF;
        PRAGMA journal_size_limit = 67108864;
        """

    /// Version 1. `jseq` is AUTOINCREMENT so a number is never handed out twice, even after retention deleted the
    /// newest rows (gateway events' CloudEvent ids contain it). NULLs are distinct in SQLite's UNIQUE, so gateway
    /// events (boot and seq NULL) never collide; device records collide on (device, boot, seq) and are stored once.
    static let createVersion1 = """
        CREATE TABLE IF NOT EXISTS events (
            jseq INTEGER PRIMARY KEY AUTOINCREMENT,
            device TEXT NOT NULL,
            boot INTEGER,
            seq INTEGER,
            type TEXT NOT NULL,
            alarm INTEGER NOT NULL,
            time_ms INTEGER NOT NULL,
            recorded_ms INTEGER NOT NULL,
            topic TEXT NOT NULL,
            payload TEXT NOT NULL,
            published_ms INTEGER,
            UNIQUE (device, boot, seq)
        );
        CREATE INDEX IF NOT EXISTS events_unpublished ON events (jseq) WHERE published_ms IS NULL;
        CREATE INDEX IF NOT EXISTS events_recorded ON events (recorded_ms);
        CREATE TABLE IF NOT EXISTS device_cursor (
            device TEXT PRIMARY KEY,
            boot INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS gateway_state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_ms INTEGER NOT NULL
        );
        PRAGMA user_version = 1;
        """

    /// Brings the file at `connection` to the current version; refuses a file written by a newer gateway.
    static func migrate(_ connection: SQLiteConnection) throws {
        let current = try connection.scalar("PRAGMA user_version") ?? 0
        if current > version {
            throw SQLiteError(code: 0, message: "the journal has schema version \(current), newer than this gateway's \(version)",
                              statement: "PRAGMA user_version", path: connection.path)
        }
        if current < 1 {
            // `Journal.init` set auto_vacuum = INCREMENTAL before anything else: it only takes on an empty file.
            try connection.transaction { try connection.execute(createVersion1) }
        }
    }
}
