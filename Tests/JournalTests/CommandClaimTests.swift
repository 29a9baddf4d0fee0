import AccessModel
import Dispatch
import Foundation
@testable import Journal
import Testing

/// SPEC 4.1 rule 7: request ids are remembered durably, in `JOURNAL.commands`, whose writer never waits for the
/// journal's event batches; the journal's own command tables carry them into and out of it (older journals,
/// backups).
@Suite struct CommandClaimTests {
    static func request(_ id: String, device: String = "door-3e", at millis: Int64 = baseMillis) -> CommandRequestRecord {
        CommandRequestRecord(id: id, issuer: "pm-kunming", device: device, command: "open",
                             received: Timestamp(millisecondsSinceEpoch: millis))
    }

    @Test func anIDIsClaimedOnceRememberedAcrossReopeningAndKeptBesideTheJournal() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        var journal: Journal? = try temp.open()
        guard case let .claimed(first) = try journal!.claimCommand(Self.request("pm-1")) else {
            Issue.record("a new id was not claimed")
            return
        }
        guard case let .claimed(second) = try journal!.claimCommand(Self.request("pm-2")) else {
            Issue.record("a second id was not claimed")
            return
        }
        #expect(second.deviceCommandID == first.deviceCommandID &+ 1, "device command ids are consecutive per device")
        #expect(try journal!.claimCommand(Self.request("pm-1")) == .seen(first))
        try journal!.finishCommand(id: "pm-1", issuer: "pm-kunming", status: "written", reason: nil)
        #expect(FileManager.default.fileExists(atPath: temp.path + ".commands"))
        journal = nil

        let reopened = try temp.open()
        guard case let .seen(stored) = try reopened.claimCommand(Self.request("pm-1")) else {
            Issue.record("a reopened journal forgot a claimed id")
            return
        }
        #expect(stored.status == "written" && stored.deviceCommandID == first.deviceCommandID)
        #expect(try reopened.commandRequest(device: "door-3e", deviceCommandID: second.deviceCommandID)?.id == "pm-2")
        guard case let .claimed(third) = try reopened.claimCommand(Self.request("pm-3")) else {
            Issue.record("a new id was not claimed after reopening")
            return
        }
        #expect(third.deviceCommandID == second.deviceCommandID &+ 1, "a restart never reuses a device command id")
        // Nothing in the journal's own tables: the store holds them.
        #expect(try reopened.withWriteConnection { try $0.scalar("SELECT count(*) FROM command_requests") } == 0)
    }

    @Test func beforeCommitRunsInsideANewClaimsTransactionOnly() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        var handedOver: [CommandRequestRecord] = []
        let claim = try journal.claimCommand(Self.request("pm-1")) { stored in
            handedOver.append(stored)
            // Inside the transaction: another connection does not see the row yet.
            let other = try? SQLiteConnection(path: journal.commandClaimsPath, readOnly: true)
            #expect((try? other?.scalar("SELECT count(*) FROM command_requests WHERE id = 'pm-1'")) == 0)
        }
        #expect(claim == .claimed(handedOver[0]) && handedOver.count == 1)
        _ = try journal.claimCommand(Self.request("pm-1")) { _ in Issue.record("a seen id was handed over again") }
    }

    @Test func aClaimDoesNotWaitForTheJournalWriter() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        try journal.openCommandClaims()
        let writer = HeldWriter(journal)
        let claimed: Void? = writer.runElsewhere { _ = try? journal.claimCommand(Self.request("during-a-batch")) }
        writer.release()
        #expect(claimed != nil, "the claim waited for the journal writer's transaction")
    }

    @Test func idsInTheJournalsOwnTablesAreTakenOverAndABackupCarriesThem() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        // A journal from before the store (or a restored backup): its ids are in its own tables.
        do {
            let journal = try temp.open()
            try journal.withWriteConnection { connection in
                _ = try connection.run("""
                    INSERT INTO command_requests (id, issuer, device, command, device_command_id, status, reason, received_ms)
                    VALUES ('old-1', 'pm-kunming', 'door-3e', 'open', 41, 'written', NULL, \(Timestamp.now.millisecondsSinceEpoch))
                    """)
                _ = try connection.run("INSERT INTO command_counters (device, last_id) VALUES ('door-3e', 41)")
            }
        }
        let journal = try temp.open()
        guard case let .seen(old) = try journal.claimCommand(Self.request("old-1", at: Timestamp.now.millisecondsSinceEpoch)) else {
            Issue.record("an id of the journal's own table was forgotten")
            return
        }
        #expect(old.status == "written" && old.deviceCommandID == 41)
        guard case let .claimed(new) = try journal.claimCommand(Self.request("new-1", at: Timestamp.now.millisecondsSinceEpoch)) else {
            Issue.record("a new id was not claimed")
            return
        }
        #expect(new.deviceCommandID == 42)
        #expect(try journal.withWriteConnection { try $0.scalar("SELECT count(*) FROM command_requests") } == 0)

        // `accessgw backup` copies the store's ids into the backup's tables; a journal restored from it remembers them.
        let backup = temp.directory.appendingPathComponent("backup.db").path
        _ = try JournalBackup.run(source: temp.path, destination: backup)
        let restoredDirectory = temp.directory.appendingPathComponent("restored")
        try FileManager.default.createDirectory(at: restoredDirectory, withIntermediateDirectories: true)
        let restoredPath = restoredDirectory.appendingPathComponent("journal.db").path
        try FileManager.default.copyItem(atPath: backup, toPath: restoredPath)
        let restored = try Journal(path: restoredPath)
        for id in ["old-1", "new-1"] {
            guard case .seen = try restored.claimCommand(Self.request(id, at: Timestamp.now.millisecondsSinceEpoch)) else {
                Issue.record("the restored journal forgot \(id)")
                continue
            }
        }
        guard case let .claimed(next) = try restored.claimCommand(Self.request("new-2", at: Timestamp.now.millisecondsSinceEpoch)) else {
            Issue.record("a new id was not claimed on the restored journal")
            return
        }
        #expect(next.deviceCommandID == 43)
    }
}

/// Issue 19 items 8 and 9: ids per issuer with their arguments, a store of schema 1 upgraded, and a new or lost
/// id memory told apart from a first start.
@Suite struct CommandMemoryTests {
    static func request(_ id: String, issuer: String, device: String = "door-3e", args: String? = "{}") -> CommandRequestRecord {
        CommandRequestRecord(id: id, issuer: issuer, device: device, command: "open", args: args, received: .now)
    }

    @Test func idsOfDifferentIssuersNeverCollideAndKeepTheirArguments() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        guard case let .claimed(pm) = try journal.claimCommand(Self.request("r-1", issuer: "pm-kunming", args: #"{"door":1}"#)),
              case let .claimed(ops) = try journal.claimCommand(Self.request("r-1", issuer: "ops")) else {
            Issue.record("the same id of two issuers was not claimed twice")
            return
        }
        #expect(pm.deviceCommandID != ops.deviceCommandID)
        guard case let .seen(first) = try journal.claimCommand(Self.request("r-1", issuer: "pm-kunming", device: "gate-1")) else {
            Issue.record("a reused id was claimed again")
            return
        }
        #expect(first.device == "door-3e" && first.args == #"{"door":1}"#)
        try journal.finishCommand(id: "r-1", issuer: "ops", status: "written", reason: nil)
        guard case let .seen(stillPending) = try journal.claimCommand(Self.request("r-1", issuer: "pm-kunming")),
              case let .seen(written) = try journal.claimCommand(Self.request("r-1", issuer: "ops")) else {
            Issue.record("an id was forgotten")
            return
        }
        #expect(stillPending.status == "pending" && written.status == "written", "an outcome went to the other issuer's id")
    }

    @Test func aStoreOfSchemaOneKeepsItsIdsWhenUpgraded() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        _ = try temp.open()
        do {
            let store = try SQLiteConnection(path: temp.path + ".commands", readOnly: false)
            try store.execute(CommandClaimStore.tables + "PRAGMA user_version = 1;")
            _ = try store.run("""
                INSERT INTO command_requests (id, issuer, device, command, device_command_id, status, reason, received_ms)
                VALUES ('old-1', 'pm-kunming', 'door-3e', 'open', 7, 'written', NULL, \(Timestamp.now.millisecondsSinceEpoch))
                """)
        }
        let journal = try temp.open()
        guard case let .seen(old) = try journal.claimCommand(Self.request("old-1", issuer: "pm-kunming")) else {
            Issue.record("an id of a schema 1 store was forgotten")
            return
        }
        #expect(old.deviceCommandID == 7 && old.args == nil)
        #expect(try journal.withClaims { try $0.scalar("PRAGMA user_version") } == CommandClaimStore.schemaVersion)
    }

    @Test func aNewIDMemoryBesideAJournalWithHistoryIsNewAndAFirstStartIsNot() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        do {
            let first = try temp.open()
            #expect(try first.openCommandClaims() == .remembered, "a first start")
            _ = try first.claimCommand(Self.request("a", issuer: "pm-kunming"))
        }
        #expect(try temp.open().openCommandClaims() == .remembered)
        try FileManager.default.removeItem(atPath: temp.path + ".commands")
        let reopened = try temp.open()
        guard case .new = try reopened.openCommandClaims() else {
            Issue.record("a deleted id memory went unnoticed")
            return
        }
    }

    @Test func anIDMemoryDeletedOrReplacedWhileOpenIsNoticedAndSetAside() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        try journal.openCommandClaims()
        #expect(journal.commandMemoryState() == .inPlace)
        let path = journal.commandClaimsPath
        try FileManager.default.moveItem(atPath: path, toPath: path + ".moved")
        try Data("not the store".utf8).write(to: URL(fileURLWithPath: path))
        #expect(journal.commandMemoryState() == .replaced)
        let aside = try #require(journal.setAsideCommandMemory(.replaced))
        #expect(FileManager.default.fileExists(atPath: aside) && !FileManager.default.fileExists(atPath: path))
        #expect(journal.commandMemoryState() == .missing)
        // The open store still remembers what it claimed.
        guard case .claimed = try journal.claimCommand(Self.request("b", issuer: "pm-kunming")),
              case .seen = try journal.claimCommand(Self.request("b", issuer: "pm-kunming")) else {
            Issue.record("the open store stopped remembering")
            return
        }
    }
}
