import AccessModel
import Foundation
import Journal
import Testing

/// SPEC section 4: an id is unique for ever and stable for the same device record.
@Suite struct EventIdentityTests {
    static func ids(_ journal: Journal) throws -> [String] {
        try journal.unpublished(limit: 1000).map { stored in
            let object = try JSONSerialization.jsonObject(with: Data(stored.payload.utf8)) as? [String: Any]
            return object?["id"] as? String ?? ""
        }
    }

    @Test func aReplacedControllerRestartingAtBoot1Seq1IsANewRecordWithANewID() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        _ = try journal.append([deviceEntry("door-3e", boot: 1, seq: 1, serial: "FD-0001")])
        // The same (boot, seq) from the replacement controller: stored, with the new serial in its id.
        let outcome = try journal.append([deviceEntry("door-3e", boot: 1, seq: 1, serial: "FD-0002"),
                                          deviceEntry("door-3e", boot: 1, seq: 1, serial: "FD-0001")])
        #expect(outcome.stored.map(\.entryIndex) == [0] && outcome.duplicates == [1])
        #expect(try Self.ids(journal) == ["kunming-guandu/door-3e/FD-0001.1/1", "kunming-guandu/door-3e/FD-0002.1/1"])
    }

    @Test func serialsKeepOnlyTheCharactersAnIDMayHold() {
        #expect(DeviceSerial(sanitising: "FD 2411/A.00193\u{0}\u{0}").description == "FD2411A00193")
        #expect(DeviceSerial(sanitising: "云-AB_12").description == "-AB_12")
        #expect(DeviceSerial(sanitising: [0, 0, 0]).isEmpty)
        #expect(DeviceSerial(sanitising: String(repeating: "x", count: 40)).description.count == DeviceSerial.capacity)
    }

    @Test func aRecreatedJournalNeverRepeatsAGatewayMadeID() throws {
        var seen: [String] = []
        for _ in 0..<3 {
            let temp = try TemporaryJournal()
            let journal = try temp.open()
            _ = try journal.append([gatewayEntry("door-3e"), gatewayEntry("door-3e", type: "device.clock_skew")])
            seen += try Self.ids(journal)
            temp.remove()
        }
        #expect(Set(seen).count == 6, "\(seen)")
        #expect(seen.allSatisfy { $0.hasPrefix("kunming-guandu/door-3e/g/gw-01/") })
    }

    @Test func theEpochIsKeptAcrossReopening() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let first = try temp.open().epoch
        #expect(try temp.open().epoch == first)
    }

    /// Puts `Fixtures/journal-v1.db` where `temp` opens its journal.
    static func copyVersion1Fixture(to temp: TemporaryJournal) throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/journal-v1.db")
        try FileManager.default.createDirectory(atPath: (temp.path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixture.path, toPath: temp.path)
    }

    /// `Fixtures/journal-v1.db` was written by `accessgw run` of the release before ids carried serials and epochs
    /// (schema version 1): gateway.started, device.online and seqs 1–5 of door-3e's boot 1, all acknowledged.
    @Test func aVersion1JournalIsUpgradedKeepingItsEventsAndNumbers() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        try Self.copyVersion1Fixture(to: temp)
        let journal = try temp.open()
        let before = try Self.ids(journal)
        #expect(before.count == 7)
        #expect(before[2] == "kunming-guandu/door-3e/1/1", "old payloads are kept as they were: \(before)")
        #expect(journal.epoch.count == 16)
        #expect(try journal.latestJournalSeq() == 7)
        #expect(try journal.deviceCursors()["door-3e"]?.seq == 5)
        let outcome = try journal.append([deviceEntry("door-3e", boot: 1, seq: 6, serial: "SIM-FD-0001"), gatewayEntry("door-3e")])
        #expect(outcome.stored.map(\.journalSeq) == [8, 9])
        let after = try Self.ids(journal)
        #expect(Array(after.prefix(7)) == before)
        #expect(after[7] == "kunming-guandu/door-3e/SIM-FD-0001.1/6")
        #expect(after[8] == "kunming-guandu/door-3e/g/gw-01/\(journal.epoch).9")
        #expect(Set(after).count == after.count)
        // Readers (tail, status) open the upgraded file too.
        #expect(try temp.reader().latestJournalSeq() == 9)
    }

    /// The fixture's door-3e records 1–5 were journalled by a version 1 gateway that stopped before acknowledging
    /// 3–5 at the device: after the upgrade the device hands them over again, now read with its serial. They are
    /// the records already held (device, boot, seq, device time, type), not new ones; the next record and a
    /// replacement controller reusing boot 1 and a seq are new.
    @Test func recordsReadAgainAfterAVersion1UpgradeAreRecognised() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        try Self.copyVersion1Fixture(to: temp)
        let deviceTime: Int64 = 1_796_078_277_422  // the fixture's records' device time
        func record(_ seq: UInt32, serial: String = "SIM-FD-0001", time: Int64 = deviceTime, type: String = "access.granted") -> JournalEntry {
            deviceEntry("door-3e", boot: 1, seq: seq, type: type, serial: serial, timeMillis: time)
        }
        var journal: Journal? = try temp.open()
        let reRead = try journal!.append([record(3), record(4), record(5), record(6, time: deviceTime + 900)])
        #expect(reRead.duplicates == [0, 1, 2], "3-5 are held already")
        #expect(reRead.stored.map(\.journalSeq) == [8])
        #expect(try journal!.deviceCursors()["door-3e"]?.seq == 6)
        // Once the log has passed them, only (device, serial, boot, seq) counts: a crash and a reopening change nothing.
        #expect(try journal!.append([record(6, time: deviceTime + 900)]).duplicates == [0])
        journal = nil
        journal = try temp.open()
        #expect(try journal!.append([record(5)]).duplicates == [0], "a reopened journal still knows 5 under its old id")
        // A replacement controller at boot 1 reusing seqs: another time, another event, so new records.
        let replaced = try journal!.append([record(4, serial: "SIM-FD-0002", time: deviceTime + 60_000),
                                            record(5, serial: "SIM-FD-0002", time: deviceTime, type: "door.opened")])
        #expect(replaced.stored.count == 2 && replaced.duplicates.isEmpty)
        let ids = try Self.ids(journal!)
        #expect(ids.count == 10 && Set(ids).count == 10, "\(ids)")
        #expect(ids.filter { $0.hasSuffix("/5") }.count == 2, "seq 5 once from the old controller (old id), once from the new one")
    }
}
