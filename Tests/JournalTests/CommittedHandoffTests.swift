import AccessModel
import Foundation
@testable import Journal
import Testing

/// The in-memory hand-off from the journal writer to the publisher (issue 7, end to end): only committed events, one
/// contiguous run of journal seqs, and a read-back whenever memory does not start right after the cursor.
@Suite struct CommittedHandoffTests {
    func events(_ seqs: ClosedRange<Int64>) -> [CommittedHandoff.Event] {
        seqs.map { .init(journalSeq: $0, topic: "t/\($0)", payload: "p\($0)") }
    }

    func taken(_ take: CommittedHandoff.Take) -> [Int64]? {
        if case let .events(events) = take { return events.map(\.journalSeq) }
        return nil
    }

    @Test func journalOffersOnlyWhatItCommittedAndOnlyOnceResumed() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let handoff = CommittedHandoff(capacity: 16, enabled: true)
        let journal = try Journal(path: temp.path, handoff: handoff)
        _ = try journal.append([deviceEntry("door-3e", seq: 1)])
        // Nobody said it takes events yet (the publisher resumes it once connected): nothing waits in memory.
        #expect(handoff.count == 0 && journal.committedThrough == 1)
        handoff.resume()
        _ = try journal.append([deviceEntry("door-3e", seq: 2), deviceEntry("door-3e", seq: 3)])
        // A duplicate (re-read after a restart) is not stored, so not handed over either.
        _ = try journal.append([deviceEntry("door-3e", seq: 3), gatewayEntry("door-3e")])
        #expect(journal.committedThrough == 4)
        // Seq 1 is only in the journal: memory starts at 2, so the publisher at cursor 0 must read back.
        #expect(taken(handoff.take(after: 0, limit: 10)) == nil)
        let stored = try journal.unpublished(afterJournalSeq: 0, limit: 1)
        #expect(stored.map(\.journalSeq) == [1])
        let handed = handoff.take(after: 1, limit: 10)
        #expect(taken(handed) == [2, 3, 4])
        // The payload handed over is byte for byte what the journal stored.
        if case let .events(events) = handed {
            let rows = try journal.unpublished(afterJournalSeq: 1, limit: 10)
            #expect(events.map(\.payload) == rows.map(\.payload) && events.map(\.topic) == rows.map(\.topic))
        }
        #expect(handoff.count == 0)
    }

    @Test func aGapOrOverflowIsReadBackAndSuspendKeepsNothing() {
        let handoff = CommittedHandoff(capacity: 8, enabled: true)
        handoff.resume()
        handoff.offer(events(1...3))
        handoff.offer(events(4...6))
        #expect(taken(handoff.take(after: 0, limit: 2)) == [1, 2])
        // A batch past the capacity stays in the journal; the queue keeps its run, which the publisher sends first.
        handoff.offer(events(7...12))
        #expect(taken(handoff.take(after: 2, limit: 10)) == [3, 4, 5, 6])
        // 7...12 are read back; an empty queue takes the next batch as a new run.
        #expect(taken(handoff.take(after: 6, limit: 10)) == nil)
        handoff.offer(events(13...14))
        #expect(taken(handoff.take(after: 6, limit: 10)) == nil)
        #expect(taken(handoff.take(after: 12, limit: 10)) == [13, 14])
        // A batch that does not follow the last one is not taken while the queue holds a run.
        handoff.offer(events(15...15))
        handoff.offer(events(17...17))
        #expect(taken(handoff.take(after: 14, limit: 10)) == [15])
        handoff.offer(events(18...19))
        #expect(taken(handoff.take(after: 17, limit: 10)) == [18, 19])
        // Entries at or below the cursor (read back meanwhile) are skipped.
        handoff.offer(events(20...21))
        #expect(taken(handoff.take(after: 20, limit: 10)) == [21])
        handoff.offer(events(22...22))
        handoff.suspend()
        handoff.offer(events(23...24))
        #expect(handoff.count == 0)
        handoff.resume()
        handoff.offer(events(25...25))
        #expect(taken(handoff.take(after: 22, limit: 10)) == nil && taken(handoff.take(after: 24, limit: 10)) == [25])
    }

    @Test func readBackModeNeverHoldsEvents() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let handoff = CommittedHandoff(enabled: false)
        handoff.resume()
        let journal = try Journal(path: temp.path, handoff: handoff)
        _ = try journal.append([deviceEntry("door-3e", seq: 1)])
        #expect(handoff.count == 0 && taken(handoff.take(after: 0, limit: 10)) == nil)
        #expect(journal.committedThrough == 1)
    }
}
