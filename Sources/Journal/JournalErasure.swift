import AccessModel
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What `accessgw forget` deletes: every form one resident's identifier takes in events (SPEC section 2 privacy):
/// the plain value, its pseudonyms (with and without the key-version prefix) and its masked form, in the data
/// fields that carry it.
public struct ErasureRequest: Sendable, Equatable {
    /// `person`, `card` or `plate`: recorded with the count, never the identifier.
    public var kind: String
    /// The `data` fields searched (`person`, `subject`, …).
    public var fields: [String]
    /// The forms the identifier takes.
    public var values: [String]

    public init(kind: String, fields: [String], values: [String]) {
        self.kind = kind
        self.fields = fields
        self.values = values
    }
}

/// One forget, as the daemon journals it.
public struct Erasure: Sendable, Equatable {
    public var id: Int64
    public var kind: String
    public var count: Int
    public var erasedAt: Timestamp
}

extension Journal {
    /// Deletes every event carrying one of `request.values` in one of `request.fields`, and records the erasure
    /// (kind and count) for the daemon to journal as `gateway.data_erased`; returns the number of events deleted.
    ///
    /// A connection of its own: the journal is shared-writable under WAL while the daemon runs, and the busy
    /// timeout waits for the daemon's short write transactions. `secure_delete` overwrites the deleted rows in the
    /// database pages, and a TRUNCATE checkpoint (when no reader holds the WAL) empties the write-ahead log of them.
    public static func erase(path: String, request: ErasureRequest, busyTimeout: Duration = .seconds(60),
                             now: Timestamp = .now) throws -> Int {
        guard FileManager.default.fileExists(atPath: path) else {
            throw SQLiteError(code: 0, message: "no journal at \(path)", statement: "open", path: path)
        }
        let connection = try SQLiteConnection(path: path, readOnly: false)
        try connection.setBusyTimeout(milliseconds: Int32(busyTimeout.components.seconds * 1000))
        try connection.execute(JournalSchema.connectionPragmas)
        try connection.execute("PRAGMA secure_delete = ON")
        try JournalSchema.migrate(connection)
        let fieldTests = request.fields.map { _ in "json_extract(payload, ?) IN (\(request.values.map { _ in "?" }.joined(separator: ", ")))" }
        let sql = "DELETE FROM events WHERE " + fieldTests.joined(separator: " OR ")
        var bindings: [SQLiteValue] = []
        for field in request.fields { bindings += [.text("$.data.\(field)")] + request.values.map { .text($0) } }
        let deleted = try connection.transaction {
            try connection.raiseHandedOutMark()
            // Each erased event with a place (SPEC 4.3) leaves it to be filled by `gateway.erased`, naming its id.
            let base = try connection.scalar("SELECT gwseq_base FROM journal_identity LIMIT 1") ?? 0
            let erased = try connection.query(sql + " RETURNING jseq, json_extract(payload, '$.id')", bindings) {
                ($0.int(0), $0.optionalText(1) ?? "")
            }
            let count = erased.count
            for (jseq, id) in erased where jseq > base {
                try connection.run("INSERT OR REPLACE INTO erased_places (jseq, erases, erased_ms) VALUES (?, ?, ?)",
                                   [.int(jseq), .text(id), .int(now.millisecondsSinceEpoch)])
            }
            try connection.run("INSERT INTO erasures (kind, count, erased_ms) VALUES (?, ?, ?)",
                               [.text(request.kind), .int(Int64(count)), .int(now.millisecondsSinceEpoch)])
            return count
        }
        _ = try? connection.query("PRAGMA wal_checkpoint(TRUNCATE)") { _ in () }
        return deleted
    }

    /// Erasures not yet journalled as events, oldest first.
    public func pendingErasures() throws -> [Erasure] {
        try withWriteConnection { connection in
            try connection.query("SELECT id, kind, count, erased_ms FROM erasures WHERE journalled_ms IS NULL ORDER BY id") {
                Erasure(id: $0.int(0), kind: $0.text(1), count: Int($0.int(2)), erasedAt: Timestamp(millisecondsSinceEpoch: $0.int(3)))
            }
        }
    }

    /// Fills each place `forget` emptied (SPEC 4.3) with a `gateway.erased` event of `source` (the gateway) at the same
    /// journal seq, so the same `gwseq`, with `data.erases` = the erased event's id and no personal data. The row is
    /// stored as published: the caller publishes the returned events itself (the erased event's place may lie below
    /// the publication watermark), and with receipts on an unconfirmed place is sent again like any other.
    public func fillErasedPlaces(source: EventSource, prefix: String, at time: Timestamp = .now) throws -> [CommittedHandoff.Event] {
        try withWriteConnection { connection in
            try connection.transaction {
                let places = try connection.query("SELECT jseq, erases FROM erased_places WHERE filled_ms IS NULL ORDER BY jseq") {
                    ($0.int(0), $0.text(1))
                }
                return try places.map { jseq, erases in
                    let event = NormalisedEvent(device: source.device, origin: .gateway, type: "gateway.erased", alarm: false,
                                                time: time, recordedTime: time, fields: [("erases", .string(erases))])
                    let topic = CloudEvent.topic(of: event, source: source, prefix: prefix)
                    let payload = CloudEvent.json(event, source: source, journalSeq: jseq, epoch: epoch, gwseq: jseq - gwseqBase)
                    try connection.run("""
                        INSERT OR IGNORE INTO events (jseq, device, serial, type, alarm, time_ms, recorded_ms, topic, payload, published_ms)
                        VALUES (?, ?, '', 'gateway.erased', 0, ?, ?, ?, ?, ?)
                        """, [.int(jseq), .text(source.device), .int(time.millisecondsSinceEpoch), .int(time.millisecondsSinceEpoch),
                              .text(topic), .text(payload), .int(time.millisecondsSinceEpoch)])
                    try connection.run("UPDATE erased_places SET filled_ms = ? WHERE jseq = ?", [.int(time.millisecondsSinceEpoch), .int(jseq)])
                    return CommittedHandoff.Event(journalSeq: jseq, topic: topic, payload: payload)
                }
            }
        }
    }

    /// Marks erasures as journalled.
    public func markErasuresJournalled(_ ids: [Int64], at time: Timestamp = .now) throws {
        try withWriteConnection { connection in
            try connection.transaction {
                for id in ids {
                    try connection.run("UPDATE erasures SET journalled_ms = ? WHERE id = ?", [.int(time.millisecondsSinceEpoch), .int(id)])
                }
            }
        }
    }
}
