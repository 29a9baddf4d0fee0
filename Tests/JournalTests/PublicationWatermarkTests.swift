import AccessModel
import Foundation
@testable import Journal
import Testing

/// Schema version 9: PUBACKs move a publication watermark instead of rewriting every published event's row; only
/// events acknowledged out of order or refused get a mark of their own.
@Suite struct PublicationWatermarkTests {
    static func watermark(_ path: String) throws -> Int64 {
        try SQLiteConnection(path: path, readOnly: true).publicationWatermark().watermark
    }

    /// jseq -> published_ms as stored in the event's own row (NULL shown as nil).
    static func ownMarks(_ path: String) throws -> [Int64: Int64?] {
        let connection = try SQLiteConnection(path: path, readOnly: true)
        let rows = try connection.query("SELECT jseq, published_ms FROM events") { ($0.int(0), $0.optionalInt(1)) }
        return Dictionary(rows, uniquingKeysWith: { $1 })
    }

    static func pending(_ journal: Journal, _ reader: JournalReader) throws -> [Int64] {
        let pending = try journal.unpublished(limit: 1000)
        let seqs = pending.map(\.journalSeq)
        let sent = try journal.unpublishedPayloads(limit: 1000)
        #expect(sent.map(\.journalSeq) == seqs && sent.map(\.topic) == pending.map(\.topic)
                && sent.map(\.payload) == pending.map(\.payload))
        #expect(try journal.pendingCount() == seqs.count)
        #expect(try reader.pendingCount() == seqs.count)
        #expect(try reader.oldestPending()?.journalSeq == seqs.first)
        return seqs
    }

    @Test func outOfOrderPubacksAreMarkedAloneUntilTheWatermarkPassesThem() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        _ = try journal.append((1...10).map { deviceEntry("door-3e", seq: $0) })
        let reader = try temp.reader()
        let t = Timestamp(millisecondsSinceEpoch: baseMillis)

        #expect(try journal.markPublished([1, 2, 3], at: t) == 3)
        #expect(try Self.watermark(temp.path) == 3)
        #expect(try Self.ownMarks(temp.path).values.allSatisfy { $0 == nil }, "in order: no event row is written again")

        // 6 and 7 come back before 4 and 5: marked alone, the watermark stays.
        let later = Timestamp(millisecondsSinceEpoch: baseMillis + 5_000)
        #expect(try journal.markPublished([7, 6], at: later) == 2)
        #expect(try Self.watermark(temp.path) == 3)
        #expect(try Self.ownMarks(temp.path).compactMapValues { $0 } == [6: baseMillis + 5_000, 7: baseMillis + 5_000])
        #expect(try Self.pending(journal, reader) == [4, 5, 8, 9, 10])
        #expect(try journal.unpublished(afterJournalSeq: 4, limit: 2).map(\.journalSeq) == [5, 8])
        #expect(try journal.unpublishedPayloads(afterJournalSeq: 4, limit: 2).map(\.journalSeq) == [5, 8])
        #expect(try journal.pendingCountByDevice() == ["door-3e": 5])

        // 4 and 5 fill the gap: the watermark passes the marked 6 and 7 and stops below 8.
        let last = Timestamp(millisecondsSinceEpoch: baseMillis + 9_000)
        #expect(try journal.markPublished([4, 5], at: last) == 2)
        #expect(try Self.watermark(temp.path) == 7)
        #expect(try Self.pending(journal, reader) == [8, 9, 10])
        #expect(try journal.markPublished([5, 6, 1]) == 0, "duplicate PUBACKs change nothing")

        // What `tail` shows: each event's own time or that of the watermark move that covered it.
        let shown = try reader.events(filter: JournalFilter()).map { $0.publishedAt?.millisecondsSinceEpoch }
        #expect(shown == [baseMillis, baseMillis, baseMillis, baseMillis + 9_000, baseMillis + 9_000,
                          baseMillis + 5_000, baseMillis + 5_000, nil, nil, nil])

        // A PUBACK for a number not handed out yet never moves the watermark over future events.
        #expect(try journal.markPublished([8, 9, 10, 11, 12]) == 3)
        #expect(try Self.watermark(temp.path) == 10)
        _ = try journal.append([deviceEntry("door-3e", seq: 11)])
        #expect(try Self.pending(journal, reader) == [11])
    }

    /// The publisher does not queue behind the writer's commit (its fsync): while the writer holds the journal a batch
    /// is refused whole, nothing marked, and it is marked in full once the journal is free.
    @Test func aBatchMarkedWhileTheWriterHoldsTheJournalIsRefusedWholeAndMarkedLater() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        _ = try journal.append((1...5).map { deviceEntry("door-3e", seq: $0) })
        let reader = try temp.reader()
        let writer = HeldWriter(journal)
        let whileHeld = writer.runElsewhere { Result { try journal.markPublishedUnlessBusy([1, 2, 3]) } }
        writer.release()
        #expect(try #require(whileHeld, "marking waited for the writer").get() == nil)
        #expect(try Self.pending(journal, reader) == [1, 2, 3, 4, 5], "nothing was marked while the writer held the journal")

        #expect(try journal.markPublishedUnlessBusy([1, 2, 3]) == 3)
        #expect(try Self.watermark(temp.path) == 3)
        #expect(try Self.pending(journal, reader) == [4, 5])
    }

    @Test func aRefusedEventRightAboveTheWatermarkHoldsNothingBack() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        _ = try journal.append((1...5).map { deviceEntry("door-3e", seq: $0) })
        let reader = try temp.reader()
        #expect(try journal.markPublished([1]) == 1)
        #expect(try journal.markRefused([(journalSeq: 2, reason: 0x87)]) == 1)
        #expect(try Self.watermark(temp.path) == 2)
        #expect(try journal.markPublished([3, 4]) == 2)
        #expect(try Self.watermark(temp.path) == 4)
        #expect(try Self.pending(journal, reader) == [5])
        // Refused before: 4 is published by the watermark, a late refusal of it changes nothing.
        #expect(try journal.markRefused([(journalSeq: 4, reason: 0x87), (journalSeq: 5, reason: 0x90)]) == 1)
        #expect(try Self.watermark(temp.path) == 5)
        #expect(try reader.refusedCount() == 2)
        let stored = try reader.events(filter: JournalFilter())
        #expect(stored.map(\.refusedReason) == [nil, 0x87, nil, nil, 0x90])
        #expect(stored.allSatisfy { $0.publishedAt != nil })
        #expect(try Self.pending(journal, reader).isEmpty)
    }

    @Test func aRestartResumesFromTheWatermarkAndTheOwnMarks() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        var journal: Journal? = try temp.open()
        _ = try journal!.append((1...6).map { deviceEntry("door-3e", seq: $0) })
        try journal!.markPublished([1, 2, 4])
        journal = nil
        journal = try temp.open()
        let reader = try temp.reader()
        #expect(try Self.pending(journal!, reader) == [3, 5, 6])
        try journal!.markPublished([3])
        #expect(try Self.watermark(temp.path) == 4)
        journal = nil
        journal = try temp.open()
        #expect(try Self.pending(journal!, reader) == [5, 6])
        _ = try journal!.append([gatewayEntry("door-3e")])
        #expect(try journal!.markPublished([5, 6, 7]) == 3)
        #expect(try Self.watermark(temp.path) == 7)
        #expect(try Self.pending(journal!, reader).isEmpty)
    }

    @Test func retentionDeletesWhatTheWatermarkCoversAndKeepsItsLastMove() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        _ = try journal.append((1...8).map { deviceEntry("door-3e", seq: $0) })
        let reader = try temp.reader()
        try journal.markPublished([1, 2], at: Timestamp(millisecondsSinceEpoch: baseMillis))
        try journal.markPublished([3], at: Timestamp(millisecondsSinceEpoch: baseMillis + 2_000))
        try journal.markPublished([6], at: Timestamp(millisecondsSinceEpoch: baseMillis + 4_000))
        #expect(try Self.watermark(temp.path) == 3)
        let now = Timestamp(millisecondsSinceEpoch: baseMillis + 3_600_000)
        let outcome = try journal.enforceRetention(maxAge: .seconds(60), maxBytes: 1 << 30, now: now)
        #expect(outcome.expired == 4, "1-3 below the watermark and 6 marked alone; pending 4, 5, 7, 8 stay")
        #expect(outcome.unpublishedDropped == 0)
        #expect(try reader.events(filter: JournalFilter()).map(\.journalSeq) == [4, 5, 7, 8])
        #expect(try Self.pending(journal, reader) == [4, 5, 7, 8])
        let connection = try SQLiteConnection(path: temp.path, readOnly: true)
        #expect(try connection.query("SELECT watermark FROM publication") { $0.int(0) } == [3],
                "moves below the oldest event left go, the last stays")
        // Over the size limit with nothing published left: the oldest pending go, reported, and are not counted.
        let dropped = try journal.enforceRetention(maxAge: .seconds(60), maxBytes: 0, now: now)
        #expect(dropped.unpublishedDropped == 4)
        #expect(try Self.pending(journal, reader).isEmpty)
        #expect(try Self.watermark(temp.path) == 3)
        _ = try journal.append([deviceEntry("door-3e", seq: 9)])
        #expect(try Self.pending(journal, reader) == [9])
        #expect(try journal.markPublished([9]) == 1)
        #expect(try Self.watermark(temp.path) == 9, "the watermark passes the deleted numbers")
    }

    @Test func theCountKeptInMemoryFollowsAForgetByAnotherConnection() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        _ = try journal.append((1...4).map { deviceEntry("door-3e", seq: $0, person: $0 % 2 == 0 ? "P-0099" : "P-0012") })
        #expect(try journal.pendingCount() == 4)
        let request = ErasureRequest(kind: "person", fields: ["person"], values: ["P-0099"])
        #expect(try Journal.erase(path: temp.path, request: request) == 2)
        #expect(try journal.pendingCount() == 2)
        #expect(try journal.markPublished([1, 2, 3]) == 2)
        #expect(try Self.watermark(temp.path) == 4, "the forgotten 4 is passed over")
        #expect(try journal.pendingCount() == 0)
    }

    /// A version 8 journal: 1-3 published, 4 pending, 5 published out of order, 6 refused, 7-8 pending; or, with
    /// `allPublished`, everything published and the newest two numbers deleted by retention.
    static func makeVersion8(at path: String, allPublished: Bool = false) throws {
        let connection = try DeviceLogMarkTests.oldJournal(at: path, version: 8)
        try connection.transaction {
            for jseq in Int64(1)...10 {
                let published: Int64? = allPublished || [1, 2, 3, 5, 6].contains(jseq) ? baseMillis + jseq : nil
                try connection.run("""
                    INSERT INTO events (jseq, device, serial, boot, seq, type, alarm, time_ms, recorded_ms, topic, payload,
                                        published_ms, refused)
                    VALUES (?, 'door-3e', '', 7, ?, 'access.granted', 0, ?, ?, 't', ?, ?, ?)
                    """, [.int(jseq), .int(jseq), .int(baseMillis), .int(baseMillis + jseq), .text("{\"n\":\(jseq)}"),
                          published.map { .int($0) } ?? .null, jseq == 6 ? .int(0x87) : .null])
            }
            try connection.run("DELETE FROM events WHERE jseq > 8")
            try connection.setHandedOutMark(10)
        }
    }

    @Test func version8MigratesKeepingThePendingSetExactly() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        try Self.makeVersion8(at: temp.path)
        let before = try DeviceLogMarkTests.dump(temp.path)
        let journal = try temp.open()
        let reader = try temp.reader()
        #expect(try DeviceLogMarkTests.dump(temp.path) == before, "no event row changes")
        #expect(try Self.watermark(temp.path) == 3)
        #expect(try Self.pending(journal, reader) == [4, 7, 8])
        #expect(try reader.events(filter: JournalFilter()).map { $0.publishedAt?.millisecondsSinceEpoch }
                == [baseMillis + 1, baseMillis + 2, baseMillis + 3, nil, baseMillis + 5, baseMillis + 6, nil, nil])
        let connection = try SQLiteConnection(path: temp.path, readOnly: true)
        #expect(try connection.scalar("PRAGMA user_version") == Int64(JournalSchema.version))
        #expect(try connection.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'events_unpublished'") == 0)
        #expect(try journal.markPublished([4]) == 1)
        #expect(try Self.watermark(temp.path) == 6)
        #expect(try journal.latestJournalSeq() == 10)
    }

    @Test func aFullyPublishedVersion8JournalStartsItsWatermarkAtTheLastNumberHandedOut() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        try Self.makeVersion8(at: temp.path, allPublished: true)
        let journal = try temp.open()
        let reader = try temp.reader()
        #expect(try Self.watermark(temp.path) == 10)
        #expect(try Self.pending(journal, reader).isEmpty)
        #expect(try journal.append([gatewayEntry("door-3e")]).stored.map(\.journalSeq) == [11])
        #expect(try Self.pending(journal, reader) == [11])
    }
}
