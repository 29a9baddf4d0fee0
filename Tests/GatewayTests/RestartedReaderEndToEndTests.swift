import Foundation
import Simulators
import Testing
import TestSupport

/// A restarted gateway starts each device's log where the journal's device cursor stands (issue 7, the two known
/// issues of the fault schedules), against the real daemon: simulator over TCP, real journal file, a crash at the
/// commit/ack crash point or kill -9, and a restart.
@Suite("end to end: a restarted reader starts from the journal's device cursor")
struct RestartedReaderEndToEndTests {
    /// Before: a crash between committing `gateway.events_lost` and the ack made the restarted gateway read the
    /// device from its ack_seq and report the same loss again, under a new id.
    @Test func aLossCommittedBeforeACrashIsNotReportedAgain() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1, capacity: 10)])
        let door = simulator.devices[0]
        try harness.configure(buses: simulator.busYAML, devices: "  - { id: door-3e, profile: face-door, bus: lan, unit: 1, poll: 50ms }")
        // A log of 10 keeps seqs 21…30: 1…20 were overwritten before anyone read them.
        for i in 0..<30 { door.record(code: 16, point: Int16(i % 4)) }
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: harness.broker)
        let crashing = try ChildProcess(GatewayHarness.binary, ["run", "--config", harness.configPath],
                                        environment: ["ACCESSGW_CRASH_AFTER_COMMITS": "1"])
        #expect(crashing.wait() == 86, "the gateway should die at the crash point: \(crashing.text)")
        #expect(door.logStatus.ack == 0, "committed, never acknowledged")
        await #expect(try lossReports(harness) == [[20, 1, 20]], "the loss was committed before the crash")

        try await harness.start()
        try await waitUntil("the survivors acknowledged after the restart") { door.logStatus.ack == 30 }
        let events = try await subscriber.waitForEvents("the 10 survivors") { Set($0.compactMap(\.seq)).count >= 10 }
        #expect(Set(events.compactMap(\.seq)) == Set(21...30))
        await #expect(try lossReports(harness) == [[20, 1, 20]], "one report of the loss, journalled once")
        door.record(code: 17, point: 1)
        _ = try await subscriber.waitForEvents("seq 31") { $0.contains { $0.seq == 31 } }
        let lost = subscriber.events.filter { $0.type == "gateway.events_lost" }
        #expect(Set(lost.map(\.id)).count == 1, "one id for the loss: \(lost.map(\.id))")
        await #expect(harness.stop() == 0)
    }

    /// Before: a loss seen only after the device's ack_seq passed it (the device raises an ack below tail_seq - 1 to
    /// tail_seq - 1) lived in memory until committed; a restarted gateway read from the device's ack_seq and never
    /// saw it. Here the gateway is killed with its journal at seq 5, the log overwrites 6…15 and an ack write that
    /// arrives late (the gateway's last, ack_seq 5) is raised by the device to 15, clearing the overwrite flag.
    @Test func aLossTheDevicesAckPassedWhileTheGatewayWasDownIsReported() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1, capacity: 20)])
        let door = simulator.devices[0]
        try harness.configure(buses: simulator.busYAML, devices: "  - { id: door-3e, profile: face-door, bus: lan, unit: 1, poll: 50ms }")
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: harness.broker)
        try await harness.start()
        for i in 0..<5 { door.record(code: 16, point: Int16(i)) }
        try await waitUntil("the first 5 events acknowledged") { door.logStatus.ack == 5 }
        harness.crash()

        for i in 0..<30 { door.record(code: 16, point: Int16(i % 4)) }  // seqs 6…35; a log of 20 keeps 16…35
        #expect(door.logStatus.tail == 16 && door.logStatus.overwritten)
        try door.writeRegisters(address: 106, values: [0, 5])  // the late ack_seq 5
        #expect(door.logStatus.ack == 15 && !door.logStatus.overwritten, "the device raised the ack past 6…15")

        try await harness.start()
        try await waitUntil("the survivors acknowledged after the restart") { door.logStatus.ack == 35 }
        let events = try await subscriber.waitForEvents("the loss report and the 20 survivors") { events in
            events.contains { $0.type == "gateway.events_lost" } && Set(events.compactMap(\.seq)).isSuperset(of: 16...35)
        }
        #expect(Set(events.compactMap(\.seq)) == Set(1...5).union(16...35))
        await #expect(try lossReports(harness) == [[10, 6, 15]], "seq 6…15 reported lost, once")
        await #expect(harness.stop() == 0)
    }

    /// The journalled `gateway.events_lost` reports as [count, from_seq, to_seq].
    func lossReports(_ harness: GatewayHarness) async throws -> [[Int]] {
        let stored = try await harness.accessgw(["tail", "--journal", harness.journalPath, "--type", "gateway.events_lost", "-n", "100", "--json"])
        return try stored.output.split(separator: "\n").map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            let data = object?["data"] as? [String: Any] ?? object ?? [:]
            let lost = data["lost"] as? [String: Any] ?? [:]
            return [lost["count"], lost["from_seq"], lost["to_seq"]].map { $0 as? Int ?? -1 }
        }
    }
}
