import AccessModel
import Foundation
@testable import Journal
import Testing

/// Schema 10 and the journal's side of receipts (SPEC 4.3): places (`gwseq`), the receipt kept across restarts,
/// what is unconfirmed, and retention that never deletes an unconfirmed event silently.
@Suite("journal: receipts")
struct ReceiptJournalTests {
    static func payloadWithData(_ n: Int64) -> String {
        #"{"specversion":"1.0","id":"s/d/\#(n)","type":"t","data":{"n":\#(n)}}"#
    }

    @Test func aVersion9JournalNumbersItsPlacesFromThePublicationWatermark() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let connection = try DeviceLogMarkTests.oldJournal(at: temp.path, version: 9)
        try connection.transaction {
            for jseq in Int64(1)...6 {
                try connection.run("""
                    INSERT INTO events (jseq, device, serial, boot, seq, type, alarm, time_ms, recorded_ms, topic, payload)
                    VALUES (?, 'door-3e', '', 7, ?, 'access.granted', 0, ?, ?, 't', ?)
                    """, [.int(jseq), .int(jseq), .int(baseMillis), .int(baseMillis + jseq), .text(Self.payloadWithData(jseq))])
            }
            try connection.run("INSERT INTO publication (watermark, published_ms) VALUES (3, ?)", [.int(baseMillis + 10)])
        }
        let journal = try temp.open()
        #expect(journal.gwseqBase == 3, "events published before receipts existed get no place")
        let payloads = try temp.reader().events(filter: JournalFilter()).map(\.payload)
        #expect(Array(payloads.prefix(3)) == (1...3).map { Self.payloadWithData($0) }, "published events are left as they went out")
        #expect(payloads[3] == #"{"specversion":"1.0","id":"s/d/4","type":"t","gwepoch":"\#(journal.epoch)","gwseq":1,"data":{"n":4}}"#)
        #expect(payloads[5].contains(#""gwseq":3,"data""#))
        let outcome = try journal.append([deviceEntry("door-3e", seq: 100)])
        #expect(outcome.stored.map(\.journalSeq) == [7])
        #expect(try journal.unpublished(limit: 10).last?.payload.contains(#""gwseq":4,"data""#) == true, "the next place follows on")
    }

    @Test func aNewJournalsPlacesAreItsJournalSeqsAndEveryPayloadCarriesThem() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        #expect(journal.gwseqBase == 0)
        _ = try journal.append((1...5).map { deviceEntry("door-3e", seq: UInt32($0)) } + [gatewayEntry("gw-01")])
        let stored = try journal.unpublished(limit: 10)
        for event in stored {
            let object = try JSONValue(parsing: Array(event.payload.utf8), maxDepth: 8)
            #expect(object["gwseq"] == .int(event.journalSeq))
            #expect(object["gwepoch"] == .string(journal.epoch))
        }
    }

    @Test func theAppliedReceiptSurvivesAReopen() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        var journal: Journal? = try temp.open()
        let receipt = AppliedReceipt(epoch: journal!.epoch, through: 40, ranges: [45...50, 60...60], issuer: "pm-central",
                                     appliedAt: Timestamp(millisecondsSinceEpoch: baseMillis))
        try journal!.apply(receipt)
        journal = nil
        journal = try temp.open()
        #expect(try journal!.appliedReceipt() == receipt)
        #expect(try temp.reader().appliedReceipt() == receipt)
    }

    /// Published events not confirmed are counted; unpublished, refused, confirmed and erased ones are not.
    @Test func unconfirmedCountsPublishedHeldEventsNoReceiptCovers() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        _ = try journal.append((1...10).map { deviceEntry("door-3e", seq: UInt32($0), recordedOffset: Int64($0)) })
        try journal.markPublished(Array(1...8))
        try journal.markRefused([(journalSeq: 9, reason: 0x87)])
        try journal.withWriteConnection { _ = try $0.run("DELETE FROM events WHERE jseq = 5") }  // as forget does
        let reader = try temp.reader()
        let coverage = ReceiptCoverage(through: 2, ranges: [4...4])
        let summary = try reader.unconfirmedSummary(coverage: coverage, base: journal.gwseqBase)
        #expect(summary.count == 4, "3, 6, 7 and 8")
        #expect(summary.oldestGwseq == 3)
        #expect(summary.oldestRecorded == Timestamp(millisecondsSinceEpoch: baseMillis + 3))
        let events = try reader.unconfirmedEvents(coverage: coverage, base: journal.gwseqBase, afterGwseq: 0, limit: 10)
        #expect(events.map(\.gwseq) == [3, 6, 7, 8])
        #expect(try reader.unconfirmedEvents(coverage: coverage, base: journal.gwseqBase, afterGwseq: 6, limit: 1).map(\.gwseq) == [7])
        #expect(try reader.unconfirmedSummary(coverage: ReceiptCoverage(through: 10, ranges: []), base: 0) == .none)
    }

    @Test func retentionReportsTheUnconfirmedEventsItDeletes() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        _ = try journal.append((1...10).map { deviceEntry("door-3e", seq: UInt32($0)) })
        try journal.markPublished(Array(1...10))
        let now = Timestamp(millisecondsSinceEpoch: baseMillis + 86_400_000)
        let outcome = try journal.enforceRetention(maxAge: .seconds(3600), maxBytes: 1 << 40, now: now,
                                                   coverage: ReceiptCoverage(through: 3, ranges: [6...7]))
        #expect(outcome.expired == 10)
        #expect(outcome.unconfirmedDeleted == 5, "4, 5, 8, 9 and 10")
        #expect(outcome.unconfirmedPlaces == 4...10)
        _ = try journal.append((11...12).map { deviceEntry("door-3e", seq: UInt32($0)) })
        try journal.markPublished([11, 12])
        let confirmed = try journal.enforceRetention(maxAge: .seconds(3600), maxBytes: 1 << 40, now: now,
                                                     coverage: ReceiptCoverage(through: 12, ranges: []))
        #expect(confirmed.expired == 2 && confirmed.unconfirmedDeleted == 0 && confirmed.unconfirmedPlaces == nil)
    }
}
