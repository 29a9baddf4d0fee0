import AccessModel
import Foundation
@testable import Journal
import Synchronization
import Testing

/// Schema version 8: a device record is stored once by its device log's mark (the highest seq journalled per device,
/// serial and boot) instead of a UNIQUE (device, serial, boot, seq) index.
@Suite struct DeviceLogMarkTests {
    static let legacyTime: Int64 = 1_796_078_277_422

    /// Writes a journal of schema version 7 at `path`, as the gateway before version 8 left it: door-3e's controller
    /// FD-0001 boot 1 seqs 1-5, gate-1's seqs 1-2 of boot 3 stored without a serial by a version 1 gateway, gateway
    /// events, and the three newest events deleted by retention (AUTOINCREMENT's mark 13, max(jseq) 10).
    static func makeVersion7(at path: String) throws {
        let connection = try oldJournal(at: path, version: 7)
        typealias Row = (device: String, serial: String, boot: Int64?, seq: Int64?, type: String, time: Int64)
        var rows: [Row] = [("gateway", "", nil, nil, "gateway.started", baseMillis),
                           ("gate-1", "", 3, 1, "access.granted", legacyTime),
                           ("gate-1", "", 3, 2, "access.granted", legacyTime + 1)]
        rows += (1...5).map { ("door-3e", "FD-0001", 1, Int64($0), "access.granted", baseMillis + Int64($0)) }
        rows += [("door-3e", "", nil, nil, "device.online", baseMillis)]
        rows += (6...8).map { ("door-3e", "FD-0001", 1, Int64($0), "access.granted", baseMillis + Int64($0)) }
        rows += [("gateway", "", nil, nil, "gateway.clock", baseMillis)]
        try connection.transaction {
            for (index, row) in rows.enumerated() {
                let jseq = Int64(index + 1)
                try connection.run("""
                    INSERT INTO events (jseq, device, serial, boot, seq, type, alarm, time_ms, recorded_ms, topic, payload,
                                        published_ms)
                    VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?) ON CONFLICT (device, serial, boot, seq) DO NOTHING
                    """, [.int(jseq), .text(row.device), .text(row.serial), row.boot.map { .int($0) } ?? .null,
                          row.seq.map { .int($0) } ?? .null, .text(row.type), .int(row.time), .int(baseMillis + jseq),
                          .text("accessgw/t/\(row.device)"), .text("{\"n\":\(jseq)}"), jseq <= 3 ? .int(baseMillis) : .null])
            }
            // Retention deleted the newest three (door-3e 7 and 8, gateway.clock): seq 6 is door-3e's highest left.
            try connection.run("DELETE FROM events WHERE jseq > 10")
            try connection.run("INSERT INTO device_cursor (device, boot, seq, updated_ms, serial) VALUES (?, ?, ?, ?, ?)",
                               [.text("door-3e"), .int(1), .int(8), .int(baseMillis), .text("FD-0001")])
            try connection.run("INSERT INTO device_cursor (device, boot, seq, updated_ms, serial) VALUES (?, ?, ?, ?, ?)",
                               [.text("gate-1"), .int(3), .int(2), .int(baseMillis), .text("")])
        }
        #expect(try connection.latestJournalSeq() == 13)
    }

    /// A new journal at `path` as a gateway of schema `version` creates it.
    static func oldJournal(at path: String, version: Int) throws -> SQLiteConnection {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        let connection = try SQLiteConnection(path: path, readOnly: false)
        try connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
        try connection.execute(JournalSchema.connectionPragmas)
        try JournalSchema.migrate(connection, through: version)
        #expect(try connection.scalar("PRAGMA user_version") == Int64(version))
        return connection
    }

    static func dump(_ path: String) throws -> [String] {
        let connection = try SQLiteConnection(path: path, readOnly: true)
        return try connection.query("""
            SELECT jseq, device, serial, boot, seq, type, alarm, time_ms, recorded_ms, topic, payload, published_ms, refused
            FROM events ORDER BY jseq
            """) { row in (0..<13).map { row.optionalText($0) ?? "NULL" }.joined(separator: "|") }
    }

    @Test func aVersion7JournalIsRebuiltKeepingRowsNumbersAndWhatItHolds() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        try Self.makeVersion7(at: temp.path)
        let before = try Self.dump(temp.path)
        #expect(before.count == 10)
        let rebuilt = Mutex<[Int64]>([])
        var journal: Journal? = try Journal(path: temp.path, onSchemaRebuild: { rows in rebuilt.withLock { $0.append(rows) } })
        #expect(rebuilt.withLock { $0 } == [10], "the one-time copy is announced with its size")
        #expect(try Self.dump(temp.path) == before)
        #expect(try journal!.latestJournalSeq() == 13, "AUTOINCREMENT's mark is carried over")
        let connection = try SQLiteConnection(path: temp.path, readOnly: true)
        #expect(try connection.scalar("PRAGMA user_version") == Int64(JournalSchema.version))
        let marks = try connection.deviceLogMarks()
        #expect(marks == [DeviceLogKey(device: "door-3e", serial: "FD-0001", boot: 1): 6,
                          DeviceLogKey(device: "gate-1", serial: "", boot: 3): 2])
        let indexes = try connection.query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' ORDER BY name") {
            $0.text(0)
        }
        #expect(indexes == ["events_recorded", "events_refused", "events_unserialled"])
        #expect(try journal!.deviceCursors()["door-3e"] == DeviceCursor(boot: 1, seq: 8, updatedAt: Timestamp(millisecondsSinceEpoch: baseMillis),
                                                                       serial: "FD-0001"))

        // door-3e's 5 and 6 are held; 9 is new and gets the number after the mark; a gateway event the next.
        let outcome = try journal!.append([deviceEntry("door-3e", boot: 1, seq: 5, serial: "FD-0001"),
                                           deviceEntry("door-3e", boot: 1, seq: 6, serial: "FD-0001"),
                                           deviceEntry("door-3e", boot: 1, seq: 9, serial: "FD-0001"),
                                           gatewayEntry("door-3e")])
        #expect(outcome.duplicates == [0, 1])
        #expect(outcome.stored.map(\.journalSeq) == [14, 15])
        // gate-1's records stored without a serial by version 1, read again with the serial: recognised (device,
        // boot, seq, device time and type) through the partial index; the next one is new.
        let gate = try journal!.append([deviceEntry("gate-1", boot: 3, seq: 2, serial: "GT-7", timeMillis: Self.legacyTime + 1),
                                        deviceEntry("gate-1", boot: 3, seq: 3, serial: "GT-7", timeMillis: Self.legacyTime + 2)])
        #expect(gate.duplicates == [0] && gate.stored.map(\.journalSeq) == [16])
        let plan = try connection.query("""
            EXPLAIN QUERY PLAN SELECT count(*) FROM events WHERE device = ? AND serial = '' AND boot = ? AND seq = ? AND time_ms = ? AND type = ?
            """, [.text("gate-1"), .int(3), .int(2), .int(0), .text("x")]) { $0.text(3) }
        #expect(plan.contains { $0.contains("events_unserialled") }, "\(plan)")
        journal = nil
        journal = try temp.open()
        #expect(try journal!.append([deviceEntry("door-3e", boot: 1, seq: 9, serial: "FD-0001")]).duplicates == [0])
        #expect(try journal!.latestJournalSeq() == 16)
    }

    @Test func aRecordReadAgainAcrossARestartIsStoredOnceAndNewLogsAreStored() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        var journal: Journal? = try temp.open()
        _ = try journal!.append((1...3).map { deviceEntry("door-3e", seq: $0, serial: "FD-0001") })
        journal = nil
        journal = try temp.open()
        // A crash took the ack: the device hands 2 and 3 over again, then 4 (twice in one batch: a refused ack).
        let again = try journal!.append([deviceEntry("door-3e", seq: 2, serial: "FD-0001"),
                                         deviceEntry("door-3e", seq: 3, serial: "FD-0001"),
                                         deviceEntry("door-3e", seq: 4, serial: "FD-0001"),
                                         deviceEntry("door-3e", seq: 4, serial: "FD-0001")])
        #expect(again.duplicates == [0, 1, 3] && again.stored.map(\.journalSeq) == [4])
        // A new boot and a replacement controller start their own logs; another device is another log.
        let fresh = try journal!.append([deviceEntry("door-3e", boot: 8, seq: 1, serial: "FD-0001"),
                                         deviceEntry("door-3e", boot: 7, seq: 1, serial: "FD-0002"),
                                         deviceEntry("door-4w", boot: 7, seq: 1, serial: "FD-0001")])
        #expect(fresh.duplicates.isEmpty && fresh.stored.count == 3)
        #expect(try journal!.pendingCount() == 7)
        #expect(try journal!.deviceCursors()["door-3e"]?.serial == "FD-0002")
    }

    @Test func forgettingTheNewestEventsNeverLetsTheirNumbersBeHandedOutAgain() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        do {
            let journal = try temp.open()
            _ = try journal.append([gatewayEntry("door-3e")] + (1...3).map { deviceEntry("door-3e", seq: $0, serial: "FD-0001") })
        }
        let erased = try Journal.erase(path: temp.path, request: ErasureRequest(kind: "person", fields: ["person"], values: ["P-0012"]))
        #expect(erased == 3)
        let journal = try temp.open()
        #expect(try journal.latestJournalSeq() == 4)
        #expect(try journal.append([gatewayEntry("door-3e")]).stored.map(\.journalSeq) == [5])
        // The erased records are still known as journalled: read again, they are not stored a second time.
        #expect(try journal.append([deviceEntry("door-3e", seq: 3, serial: "FD-0001")]).duplicates == [0])
    }
}
