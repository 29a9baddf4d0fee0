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
        #expect(harness.stop() == 0)
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
        #expect(harness.stop() == 0)

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
        #expect(harness.stop() == 0)
    }
}
