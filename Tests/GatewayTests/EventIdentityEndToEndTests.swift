import Foundation
import Simulators
import Testing
import TestSupport

/// SPEC section 4: `id` is unique for ever and stable for the same device record; subscribers dedupe by it.
@Suite("end to end: event ids never repeat and never change", .serialized)
struct EventIdentityEndToEndTests {
    static func ids(inJournal path: String, type: String? = nil) async throws -> [String] {
        let (_, output) = try await ChildProcess.run(GatewayHarness.binary, ["tail", "--journal", path, "-n", "100000", "--json"]
                                                   + (type.map { ["--type", $0] } ?? []))
        return output.split(separator: "\n").compactMap { line in
            let event = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            PayloadValidator.shared.expectValid(topic: "accessgw/tail/json/event/\(event?["type"] as? String ?? "?")",
                                                payload: String(line))
            return event?["id"] as? String
        }
    }

    @Test func idsStayUniqueAcrossARecreatedJournalAFactoryResetAReplacedControllerAndAReload() async throws {
        let harness = try GatewayHarness()
        let original = SimulatedDevice(kind: .faceDoor, unit: 1, serial: "FD 24/11.A1")
        var server = ModbusTCPServer(port: 0, devices: [original])
        try server.start()
        let port = server.port
        defer { server.stop() }
        let bus = "  - id: lan\n    tcp: { host: 127.0.0.1, port: \(port) }\n    timeout: 300ms"
        try harness.configure(buses: bus, devices: doorOnLanYAML)
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: harness.broker)

        try await harness.start()
        for _ in 0..<3 { original.record(code: 16, point: 1) }
        try await waitUntil("3 events acknowledged") { original.logStatus.ack == 3 }
        let firstEpochIDs = try await Self.ids(inJournal: harness.journalPath).filter { $0.contains("/g/") }
        await #expect(harness.stop() == 0)

        // 1. The journal is deleted: the new one has a new epoch, so its gateway-made ids are new.
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: harness.journalPath + suffix) }
        try await harness.start()
        original.record(code: 17, point: 1)
        try await waitUntil("seq 4 acknowledged") { original.logStatus.ack == 4 }
        let secondEpochIDs = try await Self.ids(inJournal: harness.journalPath).filter { $0.contains("/g/") }
        #expect(!firstEpochIDs.isEmpty && !secondEpochIDs.isEmpty)
        #expect(Set(firstEpochIDs).isDisjoint(with: secondEpochIDs), "\(firstEpochIDs) vs \(secondEpochIDs)")

        // 2. Factory reset: a new boot id, seqs from 1 again.
        original.reboot()
        original.record(code: 16, point: 1)
        try await waitUntil("the new boot acknowledged") { original.logStatus.ack == 2 }

        // 3. The controller is replaced by one with another serial, starting at boot 1, seq 1.
        server.stop()
        let replacement = SimulatedDevice(kind: .faceDoor, unit: 1, serial: "FD-0002")
        server = ModbusTCPServer(port: port, devices: [replacement])
        try server.start()
        replacement.record(code: 16, point: 1)
        replacement.record(code: 17, point: 1)
        try await waitUntil("the replacement's events acknowledged (log: \(harness.log))", timeout: .seconds(30)) {
            replacement.logStatus.ack == 2
        }

        // 4. A reload adds a device: its device.online is a gateway-made event of the same journal.
        let gateDevice = SimulatedDevice(kind: .plateReader, unit: 2)
        server.stop()
        server = ModbusTCPServer(port: port, devices: [replacement, gateDevice])
        try server.start()
        try harness.configure(buses: bus, devices: doorOnLanYAML + "\n  - { id: gate-1, profile: plate-reader, bus: lan, unit: 2, poll: 50ms }")
        let process = try #require(harness.gateway)
        kill(process.process.processIdentifier, SIGHUP)
        try await waitUntil("the reloaded: line", timeout: .seconds(30)) { harness.log.contains("reloaded:") }
        gateDevice.record(code: 3, point: 1)
        try await waitUntil("gate-1's event acknowledged") { gateDevice.logStatus.ack == 1 }

        let events = try await subscriber.waitForEvents("every device event") { events in
            events.filter { $0.seq != nil }.count >= 3 + 1 + 2 + 2 + 1
        }
        await #expect(harness.stop() == 0)
        let device = events.filter { $0.device == "door-3e" && $0.seq != nil }.map(\.id)
        #expect(device == [
            "test-site/door-3e/FD2411A1.1/1", "test-site/door-3e/FD2411A1.1/2", "test-site/door-3e/FD2411A1.1/3",
            "test-site/door-3e/FD2411A1.1/4", "test-site/door-3e/FD2411A1.2/1", "test-site/door-3e/FD2411A1.2/2",
            "test-site/door-3e/FD-0002.1/1", "test-site/door-3e/FD-0002.1/2",
        ])
        let all = events.map(\.id)
        #expect(Set(all).count == all.count, "an id repeated: \(all)")
        #expect(events.contains { $0.device == "gate-1" && $0.type == "device.online" })
    }

    @Test func aRecordReReadAfterACrashGetsTheIdenticalIDEvenInAFreshJournal() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let door = simulator.devices[0]
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        for i in 0..<6 { door.record(code: 16, point: Int16(i)) }
        let crashing = try ChildProcess(GatewayHarness.binary, ["run", "--config", harness.configPath],
                                        environment: ["ACCESSGW_CRASH_AFTER_COMMITS": "1"])
        #expect(crashing.wait() == 86, "the gateway should die at the crash point: \(crashing.text)")
        #expect(door.logStatus.ack == 0)
        let beforeCrash = try await Self.ids(inJournal: harness.journalPath, type: "door.opened")
        #expect(!beforeCrash.isEmpty)

        // A replacement gateway with an empty journal reads the same unacknowledged records again.
        try FileManager.default.moveItem(atPath: harness.journalPath, toPath: harness.journalPath + ".crashed")
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: harness.journalPath + suffix) }
        try await harness.start()
        try await waitUntil("all six acknowledged") { door.logStatus.ack == 6 }
        await #expect(harness.stop() == 0)
        let afterCrash = try await Self.ids(inJournal: harness.journalPath, type: "door.opened")
        #expect(afterCrash.count == 6)
        #expect(Array(afterCrash.prefix(beforeCrash.count)) == beforeCrash)
        #expect(beforeCrash.first == "test-site/door-3e/SIM-FD-0001.1/1")
    }
}
