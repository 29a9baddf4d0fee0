import Foundation
import Simulators
import Testing
import TestSupport

@Suite("end to end: device reboots and log overflows")
struct DeviceLogEndToEndTests {
    @Test func eventsAfterARebootCarryTheNewBootIDAndNothingIsReportedLost() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let door = simulator.devices[0]
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: harness.broker)
        try await harness.start()
        for _ in 0..<3 { door.record(code: 16, point: 1) }
        _ = try await subscriber.waitForEvents("3 events of boot 1") { $0.filter { $0.boot == 1 }.count >= 3 }

        door.reboot()  // boot 2, seqs restart: code 33 at seq 1
        door.record(code: 17, point: 1)
        door.record(code: 1, point: 1, direction: 1, value: 901, subject: "P-0099")
        let events = try await subscriber.waitForEvents("3 events of boot 2") { $0.filter { $0.boot == 2 }.count >= 3 }
        let device = events.filter { $0.seq != nil }
        #expect(device.map(\.id) == ["test-site/door-3e/SIM-FD-0001.1/1", "test-site/door-3e/SIM-FD-0001.1/2", "test-site/door-3e/SIM-FD-0001.1/3",
                                     "test-site/door-3e/SIM-FD-0001.2/1", "test-site/door-3e/SIM-FD-0001.2/2", "test-site/door-3e/SIM-FD-0001.2/3"])
        #expect(device.filter { $0.boot == 2 }.map(\.type) == ["device.restarted", "door.closed", "access.granted"])
        #expect(!events.contains { $0.type == "gateway.events_lost" })
        try await waitUntil("the new log acknowledged") { door.logStatus.ack == 3 }
        await #expect(harness.stop() == 0)
    }

    /// Issue 19 item 1, as the compounds saw it: for 6 access events of a device that frees acknowledged records
    /// (tail_seq = head_seq + 1 with an empty log) the gateway published 6 device.offline and 6 device.online, and
    /// status said offline and exited 1.
    @Test func aDeviceThatFreesAcknowledgedRecordsStaysOnlineAndStatusExits0() async throws {
        let harness = try GatewayHarness()
        let device = SimulatedDevice(kind: .faceDoor, unit: 1)
        device.freesAcknowledged = true
        let simulator = try TCPSimulator([device])
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: harness.broker)
        try await harness.start()
        for i in 1...6 {
            device.record(code: 1, point: 1, direction: 1, value: 950, subject: "P-\(i)")
            try await waitUntil("event \(i) acknowledged") { device.logStatus.ack == UInt32(i) }
            let requests = simulator.server.statistics.requests
            try await waitUntil("4 reads of the empty log") { simulator.server.statistics.requests >= requests + 4 }
        }
        let events = try await subscriber.waitForEvents("6 access events") { $0.filter { $0.type == "access.granted" }.count >= 6 }
        #expect(!events.contains { $0.type == "device.offline" }, "\(events.map(\.type))")
        #expect(events.filter { $0.type == "device.online" }.count <= 1, "\(events.map(\.type))")
        let status = try await harness.accessgw(["status", "--journal", harness.journalPath])
        #expect(status.status == 0 && !status.output.contains("offline"), "\(status.output)")
        await #expect(harness.stop() == 0)
    }

    @Test func overwrittenEventsWhileTheGatewayWasStoppedAreReportedExactly() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1, capacity: 10)])
        let door = simulator.devices[0]
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: harness.broker)
        try await harness.start()
        door.record(code: 16, point: 1)
        door.record(code: 17, point: 1)
        try await waitUntil("the first 2 events acknowledged") { door.logStatus.ack == 2 }
        await #expect(harness.stop() == 0)

        // 30 more while nobody reads: a log of 10 keeps seqs 23…32, so 3…22 are overwritten unread.
        for i in 0..<30 { door.record(code: 16, point: Int16(i % 4)) }
        #expect(door.logStatus.tail == 23)
        try await harness.start()
        let events = try await subscriber.waitForEvents("events_lost and the 10 survivors") { events in
            events.contains { $0.type == "gateway.events_lost" } && events.filter { ($0.seq ?? 0) >= 23 }.count >= 10
        }
        let lost = try #require(events.first { $0.type == "gateway.events_lost" })
        #expect(lost.lost == ["count": 20, "from_seq": 3, "to_seq": 22])
        #expect(lost.device == "door-3e")
        #expect(lost.id.hasPrefix("test-site/door-3e/g/gw-test/"), "a gateway-made id: \(lost.id)")
        #expect(events.filter { $0.type == "gateway.events_lost" }.count == 1)
        let lostIndex = try #require(events.firstIndex { $0.type == "gateway.events_lost" })
        let survivors = events[(lostIndex + 1)...].compactMap(\.seq)
        #expect(survivors == Array(23...32), "the surviving events follow the loss report, in order")
        #expect(events.compactMap(\.seq) == [1, 2] + Array(23...32))
        try await waitUntil("the survivors acknowledged") { door.logStatus.ack == 32 }
        await #expect(harness.stop() == 0)
    }
}
