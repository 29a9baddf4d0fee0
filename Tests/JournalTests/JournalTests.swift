import AccessModel
import Foundation
import Journal
import Testing

@Suite struct JournalTests {
    @Test func appendedEventsReadBackWithTheirCloudEventPayload() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        let entries = [deviceEntry("door-3e", seq: 1042), gatewayEntry("door-3e")]
        let outcome = try journal.append(entries)
        #expect(outcome.stored.map(\.journalSeq) == [1, 2])
        #expect(outcome.stored.map(\.entryIndex) == [0, 1])
        #expect(outcome.duplicates.isEmpty)

        let stored = try journal.unpublished(limit: 10)
        #expect(stored.count == 2)
        #expect(stored[0].payload == CloudEvent.json(entries[0].event, source: entries[0].source, journalSeq: 1,
                                                          epoch: journal.epoch, gwseq: 1))
        #expect(stored[0].payload.contains("\"id\":\"kunming-guandu/door-3e/7/1042\""))
        #expect(stored[0].topic == "accessgw/kunming-guandu/door-3e/event/access.granted")
        #expect(stored[0].boot == 7 && stored[0].seq == 1042 && stored[0].device == "door-3e")
        #expect(stored[0].recordedTime == entries[0].event.recordedTime && stored[0].time == entries[0].event.time)
        // Gateway events carry the journal's epoch and sequence number in their id.
        #expect(journal.epoch.count == 16 && journal.epoch.allSatisfy(\.isHexDigit))
        #expect(stored[1].payload.contains("\"id\":\"kunming-guandu/door-3e/g/gw-01/\(journal.epoch).2\""))
        #expect(stored[1].boot == nil && stored[1].seq == nil)
    }

    @Test func rereadDeviceRecordIsStoredOnce() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        _ = try journal.append([deviceEntry("door-3e", seq: 1), deviceEntry("door-3e", seq: 2)])
        // The gateway crashed before acking: the device shows 2 and 3 again, and 3 is new.
        let outcome = try journal.append([deviceEntry("door-3e", seq: 2), deviceEntry("door-3e", seq: 3),
                                          deviceEntry("door-3e", seq: 3)])
        #expect(outcome.duplicates == [0, 2])
        #expect(outcome.stored == [.init(entryIndex: 1, journalSeq: 3)])
        #expect(try journal.pendingCount() == 3)
        // The same seq in another boot or another device is a different event; gateway events never collide.
        let others = try journal.append([deviceEntry("door-3e", boot: 8, seq: 2), deviceEntry("door-4w", seq: 2),
                                         gatewayEntry("door-3e"), gatewayEntry("door-3e")])
        #expect(others.duplicates.isEmpty && others.stored.count == 4)
    }

    @Test func journalSeqSurvivesReopenAndKeepsIncreasing() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        do {
            let journal = try temp.open()
            _ = try journal.append((1...5).map { deviceEntry("door-3e", seq: $0) })
            #expect(try journal.latestJournalSeq() == 5)
        }
        do {
            let journal = try temp.open()
            #expect(try journal.latestJournalSeq() == 5)
            let outcome = try journal.append([deviceEntry("door-3e", seq: 6)])
            #expect(outcome.stored.map(\.journalSeq) == [6])
            // Even when retention deleted the newest rows, numbers are never handed out twice.
            try journal.markPublished(Array(1...6))
            let retention = try journal.enforceRetention(maxAge: .seconds(1), maxBytes: 1 << 30,
                                                         now: Timestamp(millisecondsSinceEpoch: baseMillis + 60_000))
            #expect(retention.expired == 6)
        }
        let journal = try temp.open()
        #expect(try journal.append([gatewayEntry("door-3e")]).stored.map(\.journalSeq) == [7])
        #expect(try temp.reader().latestJournalSeq() == 7)
    }

    @Test func committedDataIsVisibleAfterClosingAndReopening() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        do {
            let journal = try temp.open()
            _ = try journal.append([deviceEntry("door-3e", seq: 1), deviceEntry("door-3e", seq: 2)])
            try journal.markPublished([1])
            try journal.setState(key: "status", value: "{\"state\":\"online\"}")
        }
        let journal = try temp.open()
        let pending = try journal.unpublished(limit: 10)
        #expect(pending.map(\.journalSeq) == [2])
        #expect(try journal.deviceCursors()["door-3e"].map { [$0.boot, UInt16($0.seq)] } == [7, 2])
        #expect(try temp.reader().state(key: "status")?.value == "{\"state\":\"online\"}")
    }

    @Test func unpublishedComeInJournalOrderAndMarkPublishedRemovesThem() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        _ = try journal.append((1...10).map { deviceEntry($0 % 2 == 0 ? "door-3e" : "lane-1", seq: UInt32($0)) })
        #expect(try journal.unpublished(limit: 4).map(\.journalSeq) == [1, 2, 3, 4])
        #expect(try journal.unpublished(afterJournalSeq: 4, limit: 3).map(\.journalSeq) == [5, 6, 7])
        // PUBACKs arrive out of order; a second ack of the same event changes nothing.
        #expect(try journal.markPublished([3, 1, 2, 7]) == 4)
        #expect(try journal.markPublished([3]) == 0)
        #expect(try journal.unpublished(limit: 100).map(\.journalSeq) == [4, 5, 6, 8, 9, 10])
        #expect(try journal.pendingCount() == 6)
        #expect(try journal.pendingCountByDevice() == ["door-3e": 4, "lane-1": 2])
        #expect(try journal.oldestPending()?.journalSeq == 4)
        try journal.markPublished([4, 5, 6, 8, 9, 10])
        #expect(try journal.pendingCount() == 0)
        #expect(try journal.oldestPending() == nil)
    }

    @Test func deviceCursorFollowsTheHighestSeqAndANewBoot() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        _ = try journal.append([deviceEntry("door-3e", seq: 10), deviceEntry("door-3e", seq: 12),
                                deviceEntry("door-3e", seq: 11)])
        #expect(try journal.deviceCursors()["door-3e"]?.seq == 12)
        _ = try journal.append([deviceEntry("door-3e", boot: 8, seq: 1)])
        let cursor = try #require(try journal.deviceCursors()["door-3e"])
        #expect(cursor.boot == 8 && cursor.seq == 1)
        #expect(try journal.deviceCursors()["lane-1"] == nil)
    }

    /// The cursor a restarted reader starts from (issue 7): a journalled loss moves it past the seqs it reports, in the
    /// same transaction, and another controller (serial) replaces it like another boot does.
    @Test func deviceCursorCoversReportedLossesAndNamesTheController() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        var lost = gatewayEntry("door-3e", type: "gateway.events_lost")
        lost.lostThrough = LogPosition(serial: DeviceSerial(sanitising: "SN-1"), boot: 7, seq: 20)
        _ = try journal.append([deviceEntry("door-3e", seq: 4, serial: "SN-1"), lost, deviceEntry("door-3e", seq: 21, serial: "SN-1")])
        #expect(try journal.deviceCursors()["door-3e"].map { [$0.boot, UInt16($0.seq)] } == [7, 21])
        _ = try journal.append([lost])
        #expect(try journal.deviceCursors()["door-3e"]?.seq == 21, "a loss below the cursor does not move it back")
        var later = gatewayEntry("door-3e", type: "gateway.events_lost")
        later.lostThrough = LogPosition(serial: DeviceSerial(sanitising: "SN-1"), boot: 7, seq: 40)
        _ = try journal.append([later])
        #expect(try journal.deviceCursors()["door-3e"].map { [$0.boot, UInt16($0.seq)] } == [7, 40])
        #expect(try journal.deviceCursors()["door-3e"]?.serial == "SN-1")
        _ = try journal.append([deviceEntry("door-3e", seq: 3, serial: "SN-2")])
        let replaced = try #require(try journal.deviceCursors()["door-3e"])
        #expect(replaced.serial == "SN-2" && replaced.boot == 7 && replaced.seq == 3, "a replaced controller's cursor starts over")
    }

    @Test func retentionByAgeNeverDeletesUnpublishedEvents() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        // Ten events an hour apart; the first six are published.
        _ = try journal.append((0..<10).map { deviceEntry("door-3e", seq: UInt32($0 + 1), recordedOffset: Int64($0) * 3_600_000) })
        try journal.markPublished(Array(1...6))
        let now = Timestamp(millisecondsSinceEpoch: baseMillis + 10 * 3_600_000)
        let outcome = try journal.enforceRetention(maxAge: .seconds(5 * 3600 + 1), maxBytes: 1 << 40, now: now)
        // Recorded 10 h to 6 h ago, so older than 5 h 1 s, and published: jseq 1...5.
        #expect(outcome.expired == 5)
        #expect(outcome.unpublishedDropped == 0)
        // A retention far shorter than the unpublished backlog deletes only published ones.
        let all = try journal.enforceRetention(maxAge: .seconds(1), maxBytes: 1 << 40, now: now)
        #expect(all.expired == 1)
        #expect(try journal.pendingCount() == 4)
        #expect(try journal.unpublished(limit: 10).map(\.journalSeq) == [7, 8, 9, 10])
    }

    @Test func sizeLimitDeletesPublishedFirstAndReportsUnpublishedDrops() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        let empty = try journal.sizeInUse()
        let bulky = String(repeating: "x", count: 2000)
        _ = try journal.append((1...400).map { deviceEntry("door-3e", seq: UInt32($0), person: bulky) })
        try journal.markPublished(Array(1...200))
        let full = try journal.sizeInUse()
        #expect(full > empty + 400 * 2000)

        // Room for about three quarters: only published events go, oldest first.
        let threeQuarters = empty + (full - empty) * 3 / 4
        let first = try journal.enforceRetention(maxAge: .seconds(365 * 86400), maxBytes: threeQuarters,
                                                 now: Timestamp(millisecondsSinceEpoch: baseMillis))
        #expect(first.expired == 0)
        #expect(first.publishedDroppedForSize > 0 && first.publishedDroppedForSize < 200)
        #expect(first.unpublishedDropped == 0)
        #expect(first.bytesAfter <= threeQuarters)
        #expect(try journal.pendingCount() == 200)
        #expect(try temp.reader().events(filter: JournalFilter(limit: 1_000)).first?.journalSeq
                    == Int64(first.publishedDroppedForSize + 1))

        // Room for about a quarter: every published event goes, then the oldest unpublished, reported.
        let quarter = empty + (full - empty) / 4
        let second = try journal.enforceRetention(maxAge: .seconds(365 * 86400), maxBytes: quarter,
                                                  now: Timestamp(millisecondsSinceEpoch: baseMillis))
        #expect(second.publishedDroppedForSize == 200 - first.publishedDroppedForSize)
        #expect(second.unpublishedDropped > 0)
        #expect(second.bytesAfter <= quarter)
        let pending = try journal.unpublished(limit: 1_000)
        #expect(pending.count == 200 - second.unpublishedDropped)
        // The newest unpublished events are the ones kept.
        #expect(pending.last?.journalSeq == 400)
        #expect(pending.first?.journalSeq == Int64(201 + second.unpublishedDropped))
    }

    @Test func writerThreadAndPublisherShareTheJournal() async throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        let writer = Thread {
            for batch in 0..<100 {
                _ = try? journal.append((1...5).map { deviceEntry("door-3e", seq: UInt32(batch * 5 + $0)) })
            }
        }
        writer.start()
        var published = 0
        let deadline = ContinuousClock.now + .seconds(60)
        while published < 500, ContinuousClock.now < deadline {
            let batch = try journal.unpublished(limit: 50)
            published += try journal.markPublished(batch.map(\.journalSeq))
            if batch.isEmpty { try await Task.sleep(for: .milliseconds(1)) }
        }
        #expect(published == 500)
        #expect(try journal.pendingCount() == 0)
        #expect(try journal.latestJournalSeq() == 500)
    }

    @Test func retentionGivesFreedSpaceBackToTheFileSystem() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        let bulky = String(repeating: "y", count: 4000)
        _ = try journal.append((1...300).map { deviceEntry("door-3e", seq: UInt32($0), person: bulky) })
        try journal.markPublished(Array(1...300))
        func fileSize() throws -> Int64 {
            (try FileManager.default.attributesOfItem(atPath: temp.path)[.size] as? NSNumber)?.int64Value ?? 0
        }
        // Checkpoints move the WAL's pages into the database file, so its size is what we measure.
        try journal.checkpoint()
        let before = try fileSize()
        let outcome = try journal.enforceRetention(maxAge: .seconds(1), maxBytes: 1 << 40,
                                                   now: Timestamp(millisecondsSinceEpoch: baseMillis + 60_000))
        #expect(outcome.expired == 300)
        try journal.checkpoint()
        #expect(try fileSize() < before / 4)
    }
}
