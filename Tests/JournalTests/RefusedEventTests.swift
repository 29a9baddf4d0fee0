import AccessModel
import Foundation
@testable import Journal
import Testing
import TestSupport

/// Journal schema version 2: events the broker refused are recorded with their reason and never handed out again.
@Suite struct RefusedEventTests {
    @Test func refusedEventsAreDoneVisibleAndNotResent() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        _ = try journal.append((1...3).map { deviceEntry("door-3e", seq: $0) })
        #expect(try journal.markRefused([(journalSeq: 2, reason: 0x87)]) == 1)
        #expect(try journal.unpublished(limit: 10).map(\.journalSeq) == [1, 3])
        #expect(try journal.pendingCount() == 2)
        #expect(try journal.refusedCount() == 1)
        let reader = try temp.reader()
        #expect(try reader.refusedCount() == 1)
        let stored = try reader.events(filter: JournalFilter())
        #expect(stored.map(\.refusedReason) == [nil, 0x87, nil])
        #expect(stored[1].publishedAt != nil)
        // A refusal for an event already published (a late duplicate PUBACK) changes nothing.
        _ = try journal.markPublished([1])
        #expect(try journal.markRefused([(journalSeq: 1, reason: 0x87)]) == 0)
        #expect(try journal.refusedCount() == 1)
    }

    @Test func aVersion1JournalIsMigratedKeepingItsEvents() async throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        try FileManager.default.createDirectory(atPath: (temp.path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        let insert = "INSERT INTO events (device, boot, seq, type, alarm, time_ms, recorded_ms, topic, payload) "
            + "VALUES ('door-3e', 7, 1, 'access.granted', 0, 1, 2, 't', '{}');"
        let (status, output) = try await ChildProcess.run("/usr/bin/sqlite3", [temp.path, JournalSchema.createVersion1 + insert])
        #expect(status == 0, "\(output)")
        let journal = try temp.open()
        #expect(try journal.unpublished(limit: 10).map(\.journalSeq) == [1])
        #expect(try journal.markRefused([(journalSeq: 1, reason: 0x87)]) == 1)
        #expect(try journal.refusedCount() == 1)
        let (_, version) = try await ChildProcess.run("/usr/bin/sqlite3", [temp.path, "PRAGMA user_version"])
        #expect(version.trimmingCharacters(in: .whitespacesAndNewlines) == "\(JournalSchema.version)")
    }
}
