import AccessModel

/// The receipt applied last (SPEC 4.3), as the journal keeps it: a restart forgets nothing confirmed.
public struct AppliedReceipt: Sendable, Equatable {
    public var epoch: String
    /// The receipt's own `through` (a later receipt below it is stale).
    public var through: Int64
    public var ranges: [ClosedRange<Int64>]
    public var issuer: String
    public var appliedAt: Timestamp

    public init(epoch: String, through: Int64, ranges: [ClosedRange<Int64>], issuer: String, appliedAt: Timestamp) {
        self.epoch = epoch
        self.through = through
        self.ranges = ranges
        self.issuer = issuer
        self.appliedAt = appliedAt
    }

    public var coverage: ReceiptCoverage { ReceiptCoverage(through: through, ranges: ranges) }

    /// `ranges` as stored: `first-last` pairs separated by commas.
    var rangesText: String { ranges.map { "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",") }

    static func ranges(from text: String) -> [ClosedRange<Int64>] {
        text.split(separator: ",").compactMap { pair in
            let parts = pair.split(separator: "-")
            guard parts.count == 2, let first = Int64(parts[0]), let last = Int64(parts[1]), first <= last else { return nil }
            return first...last
        }
    }
}

/// A published event no receipt covers: what the re-publication sends again, byte for byte.
public struct UnconfirmedEvent: Sendable, Equatable {
    public var journalSeq: Int64
    public var gwseq: Int64
    public var topic: String
    public var payload: String
    /// When the broker acknowledged its first publication.
    public var publishedAt: Timestamp
    public var recordedAt: Timestamp
}

/// How many published events wait for a receipt, and the oldest of them.
public struct UnconfirmedSummary: Sendable, Equatable {
    public var count: Int
    /// When the gateway recorded the oldest unconfirmed event; nil when none.
    public var oldestRecorded: Timestamp?
    public var oldestGwseq: Int64?

    public static let none = UnconfirmedSummary(count: 0, oldestRecorded: nil, oldestGwseq: nil)
}

extension Journal {
    /// The receipt applied last, nil before the first.
    public func appliedReceipt() throws -> AppliedReceipt? {
        try withWriteConnection { try $0.appliedReceipt() }
    }

    /// Keeps `receipt` as the one applied (receipts are cumulative: it replaces the previous), committed with
    /// synchronous=FULL before the caller stops re-sending what it covers.
    public func apply(_ receipt: AppliedReceipt) throws {
        try withWriteConnection { connection in
            try connection.transaction {
                try connection.run("DELETE FROM receipt")
                try connection.run("INSERT INTO receipt (epoch, through, ranges, issuer, applied_ms) VALUES (?, ?, ?, ?, ?)",
                                   [.text(receipt.epoch), .int(receipt.through), .text(receipt.rangesText),
                                    .text(receipt.issuer), .int(receipt.appliedAt.millisecondsSinceEpoch)])
            }
        }
    }
}

extension JournalReader {
    /// The receipt applied last (for `status`), nil before the first.
    public func appliedReceipt() throws -> AppliedReceipt? {
        try connection.withLock { try $0.appliedReceipt() }
    }

    /// The journal's epoch and the base of its places (`gwseq = jseq - base`).
    public func placeBase() throws -> (epoch: String, base: Int64) {
        try connection.withLock { connection in
            (try connection.journalEpoch(), try connection.scalar("SELECT gwseq_base FROM journal_identity LIMIT 1") ?? 0)
        }
    }

    /// Published events (acknowledged, not refused) with places in `coverage`'s holes up to the newest, counted, and
    /// the oldest of them. One query per hole (at most 65), each a range of the primary key.
    public func unconfirmedSummary(coverage: ReceiptCoverage, base: Int64) throws -> UnconfirmedSummary {
        try connection.withLock { connection in
            let newest = try connection.latestJournalSeq() - base
            guard newest >= 1 else { return .none }
            var summary = UnconfirmedSummary.none
            for hole in coverage.holes(in: 1...newest) {
                let rows = try connection.query("""
                    SELECT count(*), min(jseq), min(recorded_ms) FROM events WHERE jseq BETWEEN ? AND ?
                        AND refused IS NULL AND (published_ms IS NOT NULL OR jseq <= \(SQLiteConnection.watermark))
                    """, [.int(hole.lowerBound + base), .int(hole.upperBound + base)]) {
                    (Int($0.int(0)), $0.optionalInt(1), $0.optionalInt(2))
                }
                guard let (count, first, recorded) = rows.first, count > 0 else { continue }
                summary.count += count
                if summary.oldestGwseq == nil, let first { summary.oldestGwseq = first - base }
                if let recorded {
                    let time = Timestamp(millisecondsSinceEpoch: recorded)
                    if summary.oldestRecorded.map({ time < $0 }) ?? true { summary.oldestRecorded = time }
                }
            }
            return summary
        }
    }

    /// Up to `limit` published events with places after `afterGwseq` that `coverage` does not confirm, oldest first.
    public func unconfirmedEvents(coverage: ReceiptCoverage, base: Int64, afterGwseq: Int64, limit: Int) throws -> [UnconfirmedEvent] {
        try connection.withLock { connection in
            let newest = try connection.latestJournalSeq() - base
            guard newest > afterGwseq, newest >= 1 else { return [] }
            var events: [UnconfirmedEvent] = []
            for hole in coverage.holes(in: max(1, afterGwseq + 1)...newest) where events.count < limit {
                events += try connection.query("""
                    SELECT jseq, topic, payload, recorded_ms,
                        coalesce(published_ms, (SELECT publication.published_ms FROM publication
                                                WHERE publication.watermark >= events.jseq ORDER BY publication.watermark LIMIT 1))
                    FROM events WHERE jseq BETWEEN ? AND ?
                        AND refused IS NULL AND (published_ms IS NOT NULL OR jseq <= \(SQLiteConnection.watermark))
                    ORDER BY jseq LIMIT ?
                    """, [.int(hole.lowerBound + base), .int(hole.upperBound + base), .int(Int64(limit - events.count))]) { row in
                    UnconfirmedEvent(journalSeq: row.int(0), gwseq: row.int(0) - base, topic: row.text(1), payload: row.text(2),
                                     publishedAt: Timestamp(millisecondsSinceEpoch: row.optionalInt(4) ?? row.int(3)),
                                     recordedAt: Timestamp(millisecondsSinceEpoch: row.int(3)))
                }
            }
            return events
        }
    }
}

extension SQLiteConnection {
    func appliedReceipt() throws -> AppliedReceipt? {
        try query("SELECT epoch, through, ranges, issuer, applied_ms FROM receipt LIMIT 1") { row in
            AppliedReceipt(epoch: row.text(0), through: row.int(1), ranges: AppliedReceipt.ranges(from: row.text(2)),
                           issuer: row.text(3), appliedAt: Timestamp(millisecondsSinceEpoch: row.int(4)))
        }.first
    }
}
