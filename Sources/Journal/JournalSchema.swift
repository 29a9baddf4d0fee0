import Foundation

/// The journal's tables, versioned with `PRAGMA user_version`.
enum JournalSchema {
    static let version = 7

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

    /// Version 2 (SPEC section 4 ids): device records are unique by (device, serial, boot, seq), so a replaced
    /// controller starting again at boot 1, seq 1 is a new record; `journal_identity` holds the random epoch that
    /// gateway-made ids carry, chosen when the journal is created (or upgraded: version 1 ids had no epoch, so
    /// none can repeat). SQLite cannot change a table's UNIQUE constraint, so `events` is rebuilt.
    static func upgradeToVersion2(epoch: String, now: Int64) -> String {
        """
        CREATE TABLE events_v2 (
            jseq INTEGER PRIMARY KEY AUTOINCREMENT,
            device TEXT NOT NULL,
            serial TEXT NOT NULL DEFAULT '',
            boot INTEGER,
            seq INTEGER,
            type TEXT NOT NULL,
            alarm INTEGER NOT NULL,
            time_ms INTEGER NOT NULL,
            recorded_ms INTEGER NOT NULL,
            topic TEXT NOT NULL,
            payload TEXT NOT NULL,
            published_ms INTEGER,
            UNIQUE (device, serial, boot, seq)
        );
        INSERT INTO events_v2 (jseq, device, boot, seq, type, alarm, time_ms, recorded_ms, topic, payload, published_ms)
            SELECT jseq, device, boot, seq, type, alarm, time_ms, recorded_ms, topic, payload, published_ms FROM events;
        DROP TABLE events;
        ALTER TABLE events_v2 RENAME TO events;
        CREATE INDEX events_unpublished ON events (jseq) WHERE published_ms IS NULL;
        CREATE INDEX events_recorded ON events (recorded_ms);
        CREATE TABLE journal_identity (
            epoch TEXT NOT NULL,
            created_ms INTEGER NOT NULL
        );
        INSERT INTO journal_identity (epoch, created_ms) VALUES ('\(epoch)', \(now));
        PRAGMA user_version = 2;
        """
    }

    /// Version 3 (SPEC 4.1 commands): every request that passed authentication and the device checks, by `id`,
    /// with its outcome, so a redelivery (even after a restart) gets the first outcome and never a second write;
    /// the per-device counter of command ids written to devices, so a restart never reuses one; and the map
    /// from a device command id back to the request, for the device's `command.executed`.
    static let upgradeToVersion3 = CommandClaimStore.tables + "PRAGMA user_version = 3;\n"

    /// Version 5 (SPEC 3.5): the last image of each map-2 device whose events are committed, written in the same
    /// transaction as those events, so a restart compares the next poll with exactly what was journalled.
    static let upgradeToVersion5 = """
        CREATE TABLE device_baseline (
            device TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            image TEXT NOT NULL,
            updated_ms INTEGER NOT NULL
        );
        PRAGMA user_version = 5;
        """

    /// Version 7 (issue 7, restarted readers): the device cursor names the controller's serial, so a restarted gateway
    /// resumes a device's log from the cursor only when the same controller answers; the cursor also moves past the
    /// seqs a journalled `gateway.events_lost` reports. Cursors of older files have no serial ('').
    static let upgradeToVersion7 = """
        ALTER TABLE device_cursor ADD COLUMN serial TEXT NOT NULL DEFAULT '';
        PRAGMA user_version = 7;
        """

    /// 64 random bits as 16 lowercase hex digits: the journal's epoch.
    static func newEpoch() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Version 4: `refused` holds the PUBACK reason code (0x80 or above, e.g. 0x87 not authorised) of an event the
    /// broker refused. Such an event also gets `published_ms`: the broker answered, it is not sent again (by this run
    /// or the next), retention treats it as done, and `status`/`tail` show it as refused.
    static let upgradeToVersion4 = """
        ALTER TABLE events ADD COLUMN refused INTEGER;
        CREATE INDEX IF NOT EXISTS events_refused ON events (jseq) WHERE refused IS NOT NULL;
        PRAGMA user_version = 4;
        """

    /// Version 6 (residents' rights): one row per `accessgw forget`, with what kind of identifier and how many events
    /// went, never the identifier itself; the daemon journals each as a `gateway.data_erased` event and marks it.
    static let upgradeToVersion6 = """
        CREATE TABLE erasures (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            count INTEGER NOT NULL,
            erased_ms INTEGER NOT NULL,
            journalled_ms INTEGER
        );
        PRAGMA user_version = 6;
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
        if current < 2 {
            let sql = upgradeToVersion2(epoch: newEpoch(), now: Int64(Date().timeIntervalSince1970 * 1000))
            try connection.transaction {
                // AUTOINCREMENT's high-water mark goes with the dropped table: carried over, so no jseq is reused.
                let handedOut = try connection.latestJournalSeq()
                try connection.execute(sql)
                _ = try connection.run("UPDATE sqlite_sequence SET seq = ? WHERE name = 'events' AND seq < ?",
                                       [.int(handedOut), .int(handedOut)])
                if handedOut > 0, try connection.scalar("SELECT count(*) FROM sqlite_sequence WHERE name = 'events'") == 0 {
                    _ = try connection.run("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)", [.int(handedOut)])
                }
            }
        }
        if current < 3 {
            try connection.transaction { try connection.execute(upgradeToVersion3) }
        }
        if current < 4 {
            try connection.transaction { try connection.execute(upgradeToVersion4) }
        }
        if current < 5 {
            try connection.transaction { try connection.execute(upgradeToVersion5) }
        }
        if current < 6 {
            try connection.transaction { try connection.execute(upgradeToVersion6) }
        }
        if current < 7 {
            try connection.transaction { try connection.execute(upgradeToVersion7) }
        }
    }
}
