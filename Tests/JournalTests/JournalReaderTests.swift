import AccessModel
import Foundation
import Journal
import Testing

@Suite struct JournalReaderTests {
    /// door-3e: granted, denied, granted; lane-1: granted, barrier.opened; one gateway event; a minute apart.
    func filledJournal(_ temp: TemporaryJournal) throws -> Journal {
        let journal = try temp.open()
        _ = try journal.append([
            deviceEntry("door-3e", seq: 1, type: "access.granted", recordedOffset: 0),
            deviceEntry("lane-1", seq: 1, type: "access.granted", recordedOffset: 60_000),
            deviceEntry("door-3e", seq: 2, type: "access.denied", recordedOffset: 120_000),
            deviceEntry("lane-1", seq: 2, type: "barrier.opened", recordedOffset: 180_000),
            gatewayEntry("door-3e", type: "device.offline", recordedOffset: 240_000),
            deviceEntry("door-3e", seq: 3, type: "access.granted", recordedOffset: 300_000),
        ])
        return journal
    }

    @Test func filtersByDeviceTypeGlobSinceAndLimit() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try filledJournal(temp)
        let reader = try temp.reader()
        func jseqs(_ filter: JournalFilter) throws -> [Int64] { try reader.events(filter: filter).map(\.journalSeq) }

        #expect(try jseqs(JournalFilter()) == [1, 2, 3, 4, 5, 6])
        #expect(try jseqs(JournalFilter(limit: 2)) == [5, 6])
        #expect(try jseqs(JournalFilter(devices: ["lane-1"])) == [2, 4])
        #expect(try jseqs(JournalFilter(devices: ["lane-1", "door-3e"], types: [NamePattern("access.*")!])) == [1, 2, 3, 6])
        #expect(try jseqs(JournalFilter(types: [NamePattern("barrier.*")!, NamePattern("device.*")!])) == [4, 5])
        #expect(try jseqs(JournalFilter(types: [NamePattern("access.granted")!])) == [1, 2, 6])
        #expect(try jseqs(JournalFilter(since: Timestamp(millisecondsSinceEpoch: baseMillis + 180_000))) == [4, 5, 6])
        #expect(try jseqs(JournalFilter(limit: 2, devices: ["door-3e"], types: [NamePattern("access.*")!])) == [3, 6])
        #expect(try jseqs(JournalFilter(limit: 2, afterJournalSeq: 2)) == [3, 4])
        #expect(try jseqs(JournalFilter(devices: ["nobody"])).isEmpty)
        // Type globs are case-sensitive and anchored, and know only `*` and `?`: a `[` is itself, not a class.
        #expect(try jseqs(JournalFilter(types: [NamePattern("ACCESS.*")!])).isEmpty)
        #expect(try jseqs(JournalFilter(types: [NamePattern("granted")!])).isEmpty)
        #expect(try jseqs(JournalFilter(types: [NamePattern("access.[g]ranted")!])).isEmpty)
        #expect(try jseqs(JournalFilter(types: [NamePattern("access.gr?nted")!])) == [1, 2, 6])
        let event = try #require(try reader.events(filter: JournalFilter(limit: 1)).first)
        #expect(event.device == "door-3e" && event.type == "access.granted" && event.seq == 3)
        #expect(event.payload.contains("\"type\":\"access.granted\""))
        _ = journal
    }

    @Test func readerSeesWritesMadeAfterItOpened() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try filledJournal(temp)
        let reader = try temp.reader()
        let start = try reader.latestJournalSeq()
        #expect(start == 6)
        #expect(try reader.events(filter: JournalFilter(afterJournalSeq: start)).isEmpty)
        #expect(try reader.pendingCount() == 6)

        _ = try journal.append([deviceEntry("door-3e", seq: 4), deviceEntry("door-3e", seq: 5)])
        try journal.markPublished([1, 2])
        try journal.setState(key: "status", value: "v1")
        // Following: everything after the last seen number, in order.
        #expect(try reader.events(filter: JournalFilter(afterJournalSeq: start)).map(\.journalSeq) == [7, 8])
        #expect(try reader.latestJournalSeq() == 8)
        #expect(try reader.pendingCount() == 6)
        #expect(try reader.pendingCountByDevice() == ["door-3e": 5, "lane-1": 1])
        #expect(try reader.oldestPending()?.journalSeq == 3)
        #expect(try reader.state(key: "status")?.value == "v1")
        try journal.setState(key: "status", value: "v2")
        #expect(try reader.state(key: "status")?.value == "v2")
        #expect(try reader.state(key: "missing") == nil)
        #expect(try reader.sizeInUse() > 0)
    }

    @Test func readerRefusesAMissingJournalWithTheFileInTheMessage() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let error = #expect(throws: SQLiteError.self) { try temp.reader() }
        #expect(error?.description.contains("journal.db") == true)
    }

    @Test func readerOpensAJournalWhoseWriterHasClosed() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        do {
            let journal = try filledJournal(temp)
            #expect(FileManager.default.fileExists(atPath: temp.path + "-wal"))
            _ = journal
        }
        let reader = try temp.reader()
        #expect(try reader.events(filter: JournalFilter(limit: 2)).map(\.journalSeq) == [5, 6])
        // The reader may come first and the daemon start later.
        let journal = try temp.open()
        _ = try journal.append([deviceEntry("door-3e", seq: 9)])
        #expect(try reader.latestJournalSeq() == 7)
    }
}
