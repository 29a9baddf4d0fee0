import Foundation
import Simulators
import Testing
import TestSupport

/// Issue 7 findings 3 and 6 against the real daemon: a second `accessgw run` on one journal, and the journal file
/// deleted while the daemon runs with unpublished events in it.
@Suite("end to end: the journal file")
struct JournalCustodyEndToEndTests {
    @Test func aSecondDaemonOnTheSameJournalExits1NamingTheFirstAndReadersStillWork() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let door = simulator.devices[0]
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        try await harness.start()
        let first = try #require(harness.gateway).process.processIdentifier
        let second = try await harness.accessgw(["run", "--config", harness.configPath])
        #expect(second.status == 1)
        #expect(second.output.contains("journal \(harness.journalPath): it is in use by another accessgw (pid \(first))"),
                "\(second.output)")
        // The first goes on undisturbed, and the read-only commands work beside it.
        door.record(code: 16, point: 1)
        try await waitUntil("the event acknowledged by the first daemon") { door.logStatus.ack == 1 }
        // status reads the daemon's snapshot beside it: 0 once the daemon's next snapshot shows everything up.
        try await waitUntil("status reports everything up") {
            await (try? harness.accessgw(["status", "--journal", harness.journalPath]).status) == 0
        }
        let tail = try await harness.accessgw(["tail", "-n", "5", "--journal", harness.journalPath])
        #expect(tail.status == 0 && tail.output.contains("door.opened"))
        await #expect(harness.stop() == 0)
        try await harness.start()  // the lock went with the first daemon
        await #expect(harness.stop() == 0)
    }

    @Test func aJournalDeletedWhileRunningLosesNothing() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let door = simulator.devices[0]
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        try await harness.start()
        harness.broker.stop()  // everything journalled from now on stays unpublished
        for _ in 0..<5 { door.record(code: 16, point: 1) }
        try await waitUntil("5 events journalled and acknowledged") { door.logStatus.ack == 5 }
        for suffix in ["", "-wal", "-shm"] { unlink(harness.journalPath + suffix) }
        for _ in 0..<3 { door.record(code: 17, point: 1) }
        let gateway = try #require(harness.gateway)
        try await waitUntil("the daemon to stop on the deleted journal") { !gateway.isRunning }
        await #expect(harness.stop() == 75)
        #expect(gateway.text.contains("journal \(harness.journalPath) was deleted while running"), "\(gateway.text)")
        #expect(door.logStatus.ack == 5, "nothing acknowledged into the deleted file")
        #expect(FileManager.default.fileExists(atPath: harness.journalPath), "the journal saved at its path")

        try harness.broker.restart()
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: harness.broker)
        try await harness.start()
        let events = try await subscriber.waitForEvents("all 8 events published") { events in
            Set(events.compactMap(\.seq)).isSuperset(of: 1...8)
        }
        #expect(!events.contains { $0.type == "gateway.events_lost" })
        try await waitUntil("all 8 acknowledged") { door.logStatus.ack == 8 }
        await #expect(harness.stop() == 0)
    }

    @Test func aJournalReplacedWhileRunningIsLeftAloneAndOursIsSavedBesideIt() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let door = simulator.devices[0]
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        try await harness.start()
        for _ in 0..<3 { door.record(code: 16, point: 1) }
        try await waitUntil("3 events acknowledged") { door.logStatus.ack == 3 }
        // An operator restores some other file over the journal while the daemon runs.
        let other = harness.directory.appendingPathComponent("other.db").path
        try Data("not this daemon's journal".utf8).write(to: URL(fileURLWithPath: other))
        #expect(rename(other, harness.journalPath) == 0)
        door.record(code: 17, point: 1)
        let gateway = try #require(harness.gateway)
        try await waitUntil("the daemon to stop on the replaced journal") { !gateway.isRunning }
        await #expect(harness.stop() == 75)
        #expect(gateway.text.contains("journal \(harness.journalPath) was replaced by another file while running"), "\(gateway.text)")
        #expect(door.logStatus.ack == 3, "nothing acknowledged after the replacement")
        #expect(try String(contentsOfFile: harness.journalPath, encoding: .utf8) == "not this daemon's journal")
        let saved = try #require(try FileManager.default.contentsOfDirectory(atPath: harness.directory.path)
            .first { $0.hasPrefix("journal.db.saved-") })
        let tail = try await harness.accessgw(["tail", "-n", "10", "--json", "--journal", harness.directory.appendingPathComponent(saved).path])
        #expect(tail.status == 0)
        #expect(tail.output.components(separatedBy: #""type":"door.opened""#).count - 1 == 3, "the 3 journalled events are in the saved copy: \(tail.output)")
    }
}
