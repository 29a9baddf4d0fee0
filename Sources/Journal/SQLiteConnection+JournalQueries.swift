import AccessModel

/// Queries shared by the writer (`Journal`) and the read-only `JournalReader`.
extension SQLiteConnection {
    /// The publication watermark (schema 9): every event at or below it is published or refused.
    static let watermark = "coalesce((SELECT max(watermark) FROM publication), 0)"

    /// An event's publication time: its own mark (acknowledged out of order, or refused), else the watermark move
    /// that covered it; NULL while pending.
    static let storedEventColumns = """
        jseq, device, boot, seq, type, alarm, time_ms, recorded_ms, topic, payload,
        coalesce(published_ms, (SELECT publication.published_ms FROM publication WHERE publication.watermark >= events.jseq
                                ORDER BY publication.watermark LIMIT 1)), refused
        """

    /// `storedEventColumns` for events known to be pending (publication time NULL).
    static let pendingEventColumns =
        "jseq, device, boot, seq, type, alarm, time_ms, recorded_ms, topic, payload, published_ms, refused"

    /// Pending events: above the watermark and without a mark of their own (a range of the primary key).
    static let pendingCondition = "jseq > \(watermark) AND published_ms IS NULL"

    static func storedEvent(_ row: Statement) -> StoredEvent {
        StoredEvent(journalSeq: row.int(0), device: row.text(1),
                    boot: row.optionalInt(2).map { UInt16(truncatingIfNeeded: $0) },
                    seq: row.optionalInt(3).map { UInt32(truncatingIfNeeded: $0) },
                    type: row.text(4), alarm: row.int(5) != 0,
                    time: Timestamp(millisecondsSinceEpoch: row.int(6)),
                    recordedTime: Timestamp(millisecondsSinceEpoch: row.int(7)),
                    topic: row.text(8), payload: row.text(9),
                    publishedAt: row.optionalInt(10).map { Timestamp(millisecondsSinceEpoch: $0) },
                    refusedReason: row.optionalInt(11).map { Int32(truncatingIfNeeded: $0) })
    }

    /// The journal's epoch: random hex chosen when it was created, part of every gateway-made event id.
    func journalEpoch() throws -> String {
        guard let epoch = try query("SELECT epoch FROM journal_identity LIMIT 1", [], { $0.text(0) }).first else {
            throw SQLiteError(code: 0, message: "the journal has no epoch (table journal_identity is empty)",
                              statement: "SELECT epoch FROM journal_identity", path: path)
        }
        return epoch
    }

    /// The highest journal sequence number ever handed out (0 for a new journal), also counting deleted rows.
    func latestJournalSeq() throws -> Int64 {
        let highest = try scalar("SELECT max(jseq) FROM events") ?? 0
        let handedOut = try scalar("SELECT seq FROM sqlite_sequence WHERE name = 'events'") ?? 0
        return max(highest, handedOut)
    }

    /// Stores `handedOut` as the highest journal seq ever handed out (`sqlite_sequence`'s 'events' row, which
    /// `latestJournalSeq` reads), never lowering it.
    func setHandedOutMark(_ handedOut: Int64) throws {
        guard handedOut > 0 else { return }
        if try run("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'events'", [.int(handedOut)]) == 0 {
            try run("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)", [.int(handedOut)])
        }
    }

    /// Before deleting events: since version 8 `jseq` is handed out by the writer, not AUTOINCREMENT, so whoever
    /// deletes rows (retention, `forget`) first records the highest jseq in the table, in the same transaction: the
    /// newest events may be among those deleted, and their numbers must never be handed out again.
    func raiseHandedOutMark() throws {
        try setHandedOutMark(try scalar("SELECT max(jseq) FROM events") ?? 0)
    }

    /// Per device log (device, serial, boot): the highest seq journalled of it (`device_log`).
    func deviceLogMarks() throws -> [DeviceLogKey: UInt32] {
        let rows = try query("SELECT device, serial, boot, seq FROM device_log") {
            (DeviceLogKey(device: $0.text(0), serial: $0.text(1), boot: UInt16(truncatingIfNeeded: $0.int(2))),
             UInt32(truncatingIfNeeded: $0.int(3)))
        }
        return Dictionary(rows, uniquingKeysWith: max)
    }

    func unpublished(afterJournalSeq: Int64, limit: Int) throws -> [StoredEvent] {
        try query("SELECT \(Self.pendingEventColumns) FROM events WHERE jseq > max(?, \(Self.watermark)) "
                  + "AND published_ms IS NULL ORDER BY jseq LIMIT ?", [.int(afterJournalSeq), .int(Int64(limit))],
                  Self.storedEvent)
    }

    /// `unpublished` with only what the publisher sends: no `StoredEvent` of eleven columns per event.
    func unpublishedPayloads(afterJournalSeq: Int64, limit: Int) throws -> [CommittedHandoff.Event] {
        try query("SELECT jseq, topic, payload FROM events WHERE jseq > max(?, \(Self.watermark)) "
                  + "AND published_ms IS NULL ORDER BY jseq LIMIT ?", [.int(afterJournalSeq), .int(Int64(limit))]) {
            CommittedHandoff.Event(journalSeq: $0.int(0), topic: $0.text(1), payload: $0.text(2))
        }
    }

    /// Counts the pending events by reading them (a range of the primary key above the watermark).
    func pendingCount() throws -> Int {
        Int(try scalar("SELECT count(*) FROM events WHERE \(Self.pendingCondition)") ?? 0)
    }

    func refusedCount() throws -> Int {
        Int(try scalar("SELECT count(*) FROM events WHERE refused IS NOT NULL") ?? 0)
    }

    func pendingCountByDevice() throws -> [String: Int] {
        let rows = try query("SELECT device, count(*) FROM events WHERE \(Self.pendingCondition) GROUP BY device") {
            ($0.text(0), Int($0.int(1)))
        }
        return Dictionary(rows, uniquingKeysWith: +)
    }

    func oldestPending() throws -> StoredEvent? {
        try query("SELECT \(Self.pendingEventColumns) FROM events WHERE \(Self.pendingCondition) ORDER BY jseq LIMIT 1",
                  [], Self.storedEvent).first
    }

    /// The publication watermark and its last move (`publication`'s highest row); (0, nil) before the first.
    func publicationWatermark() throws -> (watermark: Int64, movedAt: Int64?) {
        try query("SELECT watermark, published_ms FROM publication ORDER BY watermark DESC LIMIT 1") {
            ($0.int(0), Optional($0.int(1)))
        }.first ?? (0, nil)
    }

    /// Bytes of the file in use: (page_count - freelist_count) * page_size. Free pages are reused before the file
    /// grows, so this is what the limit must bound; incremental vacuum returns them to the file system.
    func sizeInUse() throws -> Int64 {
        let pages = try scalar("PRAGMA page_count") ?? 0
        let free = try scalar("PRAGMA freelist_count") ?? 0
        let pageSize = try scalar("PRAGMA page_size") ?? 4096
        return (pages - free) * pageSize
    }

    func deviceCursors() throws -> [String: DeviceCursor] {
        let rows = try query("SELECT device, boot, seq, updated_ms, serial FROM device_cursor") {
            ($0.text(0), DeviceCursor(boot: UInt16(truncatingIfNeeded: $0.int(1)), seq: UInt32(truncatingIfNeeded: $0.int(2)),
                                      updatedAt: Timestamp(millisecondsSinceEpoch: $0.int(3)), serial: $0.text(4)))
        }
        return Dictionary(rows, uniquingKeysWith: { $1 })
    }

    /// Journals of schema version 1 stored device records without the serial (the upgrade keeps them with serial
    /// ''), so records a device had not yet been acknowledged for come back from its log with a serial and another
    /// (device, serial, boot, seq). Per device with a cursor: its boot and the highest seq of such records in it.
    /// One lookup in `device_log` per device; a device whose profile has no serial is listed too and never consulted.
    func unserialledRecords() throws -> [String: (boot: UInt16, seq: UInt32)] {
        var records: [String: (boot: UInt16, seq: UInt32)] = [:]
        for (device, cursor) in try deviceCursors() {
            if let seq = try scalar("SELECT seq FROM device_log WHERE device = ? AND serial = '' AND boot = ?",
                                    [.text(device), .int(Int64(cursor.boot))]) {
                records[device] = (cursor.boot, UInt32(truncatingIfNeeded: seq))
            }
        }
        return records
    }

    /// Whether a record stored without a serial is `event` read again: same device, boot, seq, device time and type.
    /// A replacement controller could reuse the boot and seq, but not also the millisecond and the event.
    func holdsUnserialled(_ event: NormalisedEvent, boot: UInt16, seq: UInt32) throws -> Bool {
        try scalar("""
            SELECT count(*) FROM events WHERE device = ? AND serial = '' AND boot = ? AND seq = ? AND time_ms = ? AND type = ?
            """, [.text(event.device), .int(Int64(boot)), .int(Int64(seq)), .int(event.time.millisecondsSinceEpoch),
                  .text(event.type)]) ?? 0 > 0
    }

    func state(key: String) throws -> (value: String, updatedAt: Timestamp)? {
        try query("SELECT value, updated_ms FROM gateway_state WHERE key = ?", [.text(key)]) {
            ($0.text(0), Timestamp(millisecondsSinceEpoch: $0.int(1)))
        }.first
    }
}
