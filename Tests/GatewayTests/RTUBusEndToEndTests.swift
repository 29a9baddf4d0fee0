import Foundation
import Simulators
import Testing
import TestSupport

@Suite("end to end: an RS-485 bus on a pseudo-terminal with a silent device")
struct RTUBusEndToEndTests {
    @Test func silentDeviceGoesOfflineWithoutStarvingTheHealthyOnesAndComesBack() async throws {
        let harness = try GatewayHarness()
        let silent = SimulatedDevice(kind: .faceDoor, unit: 4, faults: DeviceFaults(noReplyProbability: 1))
        let line = try await RTUSimulator([SimulatedDevice(kind: .faceDoor, unit: 1), SimulatedDevice(kind: .plateReader, unit: 2),
                                           SimulatedDevice(kind: .elevator, unit: 3), silent])
        let names = ["door-1", "gate-2", "lift-3", "door-4"]
        let profiles = ["face-door", "plate-reader", "elevator", "face-door"]
        try harness.configure(buses: line.busYAML(), devices: (0..<4).map { i in """
          - id: \(names[i])
            profile: \(profiles[i])
            bus: b3-rs485
            unit: \(i + 1)
            poll: 200ms
        """ }.joined(separator: "\n"))
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: harness.broker)
        try await harness.start()

        // The healthy devices' events flow while the silent unit costs its bus a timeout per poll.
        for i in 0..<5 {
            line.devices[0].record(code: 16, point: Int16(i))
            line.devices[1].record(code: 1, point: 1, direction: 1, value: 950, extra: 1, subject: "云A1234\(i)")
            line.devices[2].record(code: 7, point: Int16(i + 2))
        }
        // The deadline is generous for a loaded 2-core box; a starved bus would not deliver them at all.
        let flowing = try await subscriber.waitForEvents("15 events of the healthy devices", timeout: .seconds(15)) { events in
            events.filter { $0.seq != nil && $0.device != "door-4" }.count >= 15
        }
        for device in ["door-1", "gate-2", "lift-3"] {
            #expect(flowing.filter { $0.device == device && $0.seq != nil }.compactMap(\.seq) == Array(1...5), "\(device)")
        }

        // The silent unit goes offline after 3 polls that got no reply.
        let offline = try await subscriber.waitForEvents("door-4 offline", timeout: .seconds(10)) { events in
            events.contains { $0.device == "door-4" && $0.type == "device.offline" }
        }
        #expect(line.server.statistics.dropped >= 3, "offline before 3 failed polls")
        #expect(!offline.contains { $0.device == "door-4" && $0.type == "device.online" })

        // When it answers again it comes back online.
        silent.faults = .none
        let back = try await subscriber.waitForEvents("door-4 online again", timeout: .seconds(10)) { events in
            events.contains { $0.device == "door-4" && $0.type == "device.online" }
        }
        let door4 = back.filter { $0.device == "door-4" }.map(\.type)
        #expect(door4 == ["device.offline", "device.online"])
        #expect(harness.log.contains("device offline after 3 failed polls"), "\(harness.log)")
        await #expect(harness.stop() == 0)
    }

    /// Issue 24: with SPEC 2's example (9600 baud, `timeout: 200ms`) on a baud-paced line every window read timed out
    /// (its reply alone takes 226 ms on the wire) and its late reply was read as the next unit's ("reply from another
    /// unit", "link lost"). Now the events flow in order and the line never times out or meets a late reply.
    @Test func windowReadsAtSpecExampleSettingsNeverTimeOut() async throws {
        let harness = try GatewayHarness()
        let doors = (1...3).map { SimulatedDevice(kind: .faceDoor, unit: UInt8($0), responseLatencyMilliseconds: 5) }
        let line = try await RTUSimulator(doors, paced: true)
        try harness.configure(buses: line.busYAML(), devices: (1...3).map { i in """
          - id: door-\(i)
            profile: face-door
            bus: b3-rs485
            unit: \(i)
            poll: 100ms
        """ }.joined(separator: "\n"))
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: harness.broker)
        try await harness.start()
        for i in 0..<4 {
            for door in doors { door.record(code: 1, point: 1, direction: 1, value: 950, subject: "p-\(i)") }
        }
        let events = try await subscriber.waitForEvents("12 events of 3 doors", timeout: .seconds(30)) { events in
            events.filter { $0.seq != nil }.count >= 12
        }
        for i in 1...3 {
            #expect(events.filter { $0.device == "door-\(i)" && $0.seq != nil }.compactMap(\.seq) == Array(1...4), "door-\(i)")
        }
        #expect(!events.contains { $0.type == "device.offline" })
        #expect(line.server.statistics.dropped == 0)
        for notice in ["no reply within", "another unit", "link to"] {
            #expect(!harness.log.contains(notice), "\(harness.log)")
        }
        await #expect(harness.stop() == 0)
    }
}
