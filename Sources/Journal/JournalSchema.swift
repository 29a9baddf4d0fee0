import Foundation

/// The journal's tables, versioned with `PRAGMA user_version`.
enum JournalSchema {
    static let version = 10

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

    /// Version 8 (issue 7, fewer pages per commit): device records are stored once by the highest seq journalled per
    /// device log (`device_log`, one row per device, serial and boot, updated once per device per commit) instead of
    /// the UNIQUE (device, serial, boot, seq) index, which cost a leaf page per device per commit; a device log is
    /// read in increasing seq order, so a record at or below its log's mark is one already journalled (a re-read
    /// after a crash or a refused ack). `events` is rebuilt without the constraint and without AUTOINCREMENT (whose
    /// `sqlite_sequence` row was rewritten by every INSERT): the writer hands out `jseq` itself, and whoever deletes
    /// events first raises `sqlite_sequence`'s 'events' row to the highest jseq (`raiseHandedOutMark`), so a number
    /// is still never handed out twice. `device_cursor` becomes WITHOUT ROWID (one b-tree instead of two). Records a
    /// version 1 journal stored without a serial keep a small partial index for `holdsUnserialled`.
    static let upgradeToVersion8 = """
        CREATE TABLE device_log (
            device TEXT NOT NULL,
            serial TEXT NOT NULL,
            boot INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (device, serial, boot)
        ) WITHOUT ROWID;
        INSERT INTO device_log (device, serial, boot, seq)
            SELECT device, serial, boot, max(seq) FROM events WHERE boot IS NOT NULL AND seq IS NOT NULL
            GROUP BY device, serial, boot;
        CREATE TABLE events_v8 (
            jseq INTEGER PRIMARY KEY,
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
            refused INTEGER
        );
        INSERT INTO events_v8 (jseq, device, serial, boot, seq, type, alarm, time_ms, recorded_ms, topic, payload,
                               published_ms, refused)
            SELECT jseq, device, serial, boot, seq, type, alarm, time_ms, recorded_ms, topic, payload, published_ms, refused
            FROM events ORDER BY jseq;
        DROP TABLE events;
        ALTER TABLE events_v8 RENAME TO events;
        CREATE INDEX events_unpublished ON events (jseq) WHERE published_ms IS NULL;
        CREATE INDEX events_recorded ON events (recorded_ms);
        CREATE INDEX events_refused ON events (jseq) WHERE refused IS NOT NULL;
        CREATE INDEX events_unserialled ON events (device, boot, seq) WHERE serial = '' AND seq IS NOT NULL;
        CREATE TABLE device_cursor_v8 (
            device TEXT PRIMARY KEY,
            boot INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL,
            serial TEXT NOT NULL DEFAULT ''
        ) WITHOUT ROWID;
        INSERT INTO device_cursor_v8 (device, boot, seq, updated_ms, serial)
            SELECT device, boot, seq, updated_ms, serial FROM device_cursor;
        DROP TABLE device_cursor;
        ALTER TABLE device_cursor_v8 RENAME TO device_cursor;
        PRAGMA user_version = 8;
        """

    /// Version 9 (issue 7, fewer pages per event): a publication watermark instead of an UPDATE of every published
    /// row. `publication` holds the watermark's moves: every event with jseq at or below a row's `watermark` (and
    /// above the previous row's) was published or refused by that row's `published_ms` (moves within a second share
    /// one row, so the time is at most a second late); its highest `watermark` is the watermark itself. An event
    /// above it is pending unless it carries its own `published_ms`, as the few acknowledged out of order and the
    /// refused ones do (`refused` as before). Rows below the watermark never change again, and pending events are
    /// found by a range of the primary key above it, so `events_unpublished` goes (it was written by every append
    /// and every mark). The watermark starts just below the oldest pending event (or at the highest jseq handed out),
    /// so the pending set is exactly what it was; the events keep their `published_ms`.
    static let upgradeToVersion9 = """
        CREATE TABLE publication (
            watermark INTEGER PRIMARY KEY,
            published_ms INTEGER NOT NULL
        );
        DROP INDEX events_unpublished;
        PRAGMA user_version = 9;
        """

    /// Version 10 (SPEC 4.3 receipts): every event's place `gwseq` is `jseq - gwseq_base` (the writer hands out jseq
    /// consecutively in commit order, so places have no gaps); `receipt` holds the last receipt applied (receipts are
    /// cumulative: its `through` and `ranges` are everything the centre has confirmed), so a restart forgets nothing;
    /// `erased_places` the places `accessgw forget` emptied, which the daemon fills with `gateway.erased`.
    /// An upgraded journal numbers from the publication watermark: events published before receipts existed never
    /// carried a place, so the centre could never confirm one; the events above it (pending, or acknowledged out of
    /// order) get their places in journal order, written into their payloads.
    static let upgradeToVersion10 = """
        ALTER TABLE journal_identity ADD COLUMN gwseq_base INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE receipt (
            epoch TEXT NOT NULL,
            through INTEGER NOT NULL,
            ranges TEXT NOT NULL,
            issuer TEXT NOT NULL,
            applied_ms INTEGER NOT NULL
        );
        CREATE TABLE erased_places (
            jseq INTEGER PRIMARY KEY,
            erases TEXT NOT NULL,
            erased_ms INTEGER NOT NULL,
            filled_ms INTEGER
        );
        """

    /// Gives the events above `base` their receipts' attributes in the payload (version 10), before `"data"`.
    static let placeUpgradedEvents = """
        UPDATE events SET payload = substr(payload, 1, instr(payload, ',"data":{') - 1)
            || ',"gwepoch":"' || ? || '","gwseq":' || (jseq - ?) || substr(payload, instr(payload, ',"data":{'))
        WHERE jseq > ? AND instr(payload, ',"data":{') > 0
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
    /// `onRebuild` is told the number of rows before a step that copies the whole `events` table (version 8), so
    /// the daemon can say why its start takes longer once. `target` stops at an older version (tests make old files).
    static func migrate(_ connection: SQLiteConnection, through target: Int = version,
                        onRebuild: (@Sendable (Int64) -> Void)? = nil) throws {
        let current = try connection.scalar("PRAGMA user_version") ?? 0
        if current > version {
            throw SQLiteError(code: 0, message: "the journal has schema version \(current), newer than this gateway's \(version)",
                              statement: "PRAGMA user_version", path: connection.path)
        }
        if current < 1, target >= 1 {
            // `Journal.init` set auto_vacuum = INCREMENTAL before anything else: it only takes on an empty file.
            try connection.transaction { try connection.execute(createVersion1) }
        }
        if current < 2, target >= 2 {
            let sql = upgradeToVersion2(epoch: newEpoch(), now: Int64(Date().timeIntervalSince1970 * 1000))
            try connection.transaction {
                // AUTOINCREMENT's high-water mark goes with the dropped table: carried over, so no jseq is reused.
                let handedOut = try connection.latestJournalSeq()
                try connection.execute(sql)
                try connection.setHandedOutMark(handedOut)
            }
        }
        if current < 3, target >= 3 {
            try connection.transaction { try connection.execute(upgradeToVersion3) }
        }
        if current < 4, target >= 4 {
            try connection.transaction { try connection.execute(upgradeToVersion4) }
        }
        if current < 5, target >= 5 {
            try connection.transaction { try connection.execute(upgradeToVersion5) }
        }
        if current < 6, target >= 6 {
            try connection.transaction { try connection.execute(upgradeToVersion6) }
        }
        if current < 7, target >= 7 {
            try connection.transaction { try connection.execute(upgradeToVersion7) }
        }
        if current < 8, target >= 8 {
            try connection.transaction {
                let handedOut = try connection.latestJournalSeq()
                let rows = try connection.scalar("SELECT count(*) FROM events") ?? 0
                if rows > 0 { onRebuild?(rows) }
                try connection.execute(upgradeToVersion8)
                try connection.setHandedOutMark(handedOut)
            }
        }
        if current < 9, target >= 9 {
            try connection.transaction {
                // Computed before the index that finds the oldest pending event goes.
                let handedOut = try connection.latestJournalSeq()
                let watermark = try connection.scalar("SELECT min(jseq) - 1 FROM events WHERE published_ms IS NULL") ?? handedOut
                let publishedMillis = try connection.scalar("SELECT max(published_ms) FROM events WHERE jseq <= ?", [.int(watermark)])
                try connection.execute(upgradeToVersion9)
                if watermark > 0 {
                    try connection.run("INSERT INTO publication (watermark, published_ms) VALUES (?, ?)",
                                       [.int(watermark), .int(publishedMillis ?? Int64(Date().timeIntervalSince1970 * 1000))])
                }
            }
        }
        if current < 10, target >= 10 {
            try connection.transaction {
                // A journal created now starts at base 0 (gwseq = jseq); an older one at its publication watermark.
                let base = try current == 0 ? 0 : connection.publicationWatermark().watermark
                let epoch = try connection.journalEpoch()
                try connection.execute(upgradeToVersion10)
                try connection.run("UPDATE journal_identity SET gwseq_base = ?", [.int(base)])
                if current > 0 {
                    try connection.run(placeUpgradedEvents, [.text(epoch), .int(base), .int(base)])
                }
                try connection.execute("PRAGMA user_version = 10")
            }
        }
    }
}
