import Foundation
import Simulators
import Testing
import TestSupport

@Suite("end to end: simulators → accessgw run → mosquitto → subscriber", .serialized)
struct EndToEndTests {
    static let devicesYAML = """
      - id: door-3e
        profile: face-door
        bus: lan
        unit: 1
        poll: 100ms
        location: { building: "3", entrance: east }
      - id: gate-1
        profile: plate-reader
        bus: lan
        unit: 2
        poll: 100ms
      - id: lift-2
        profile: elevator
        bus: lan
        unit: 3
        poll: 100ms
    """

    func threeKinds() throws -> TCPSimulator {
        try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1), SimulatedDevice(kind: .plateReader, unit: 2),
                          SimulatedDevice(kind: .elevator, unit: 3)])
    }

    @Test func allThreeKindsArriveWithTheFieldsOfTheSpecTables() async throws {
        let harness = try GatewayHarness()
        let simulator = try threeKinds()
        try harness.configure(buses: simulator.busYAML, devices: Self.devicesYAML)
        let subscriber = try await Subscriber.subscribed(to: "accessgw/#", on: harness.broker)
        try await harness.start()
        let (door, gate, lift) = (simulator.devices[0], simulator.devices[1], simulator.devices[2])
        door.record(code: 1, point: 1, direction: 1, value: 934, subject: "P-0012")
        gate.record(code: 1, point: 1, direction: 1, value: 962, extra: 1 << 16 | 5, subject: "云AD12345")
        lift.record(code: 3, point: 7, value: 1, extra: 1)
        let events = try await subscriber.waitForEvents("one event from each device") { events in
            Set(events.filter { $0.seq != nil }.map(\.device)) == ["door-3e", "gate-1", "lift-2"]
        }
        let granted = try #require(events.first { $0.device == "door-3e" && $0.type == "access.granted" })
        #expect(granted.topic == "accessgw/test-site/door-3e/event/access.granted")
        #expect(granted.id == "test-site/door-3e/SIM-FD-0001.1/1")
        #expect(granted.data["person"] as? String == "P-0012")
        #expect(granted.data["score"] as? Double == 0.934)
        #expect(granted.data["method"] as? String == "face")
        #expect(granted.data["direction"] as? String == "in")
        #expect((granted.data["location"] as? [String: String]) == ["building": "3", "entrance": "east"])
        let plate = try #require(events.first { $0.device == "gate-1" && $0.seq != nil })
        #expect(plate.data["plate"] as? String == "云AD12345")
        #expect(plate.data["colour"] as? String == "green")
        #expect(plate.data["vehicle_type"] as? String == "car")
        let fault = try #require(events.first { $0.device == "lift-2" && $0.seq != nil })
        #expect(fault.type == "elevator.fault")
        #expect(fault.data["fault"] as? String == "passenger_trapped")
        #expect(fault.data["in_door_zone"] as? Bool == true)
        #expect(fault.data["alarm"] as? Bool == true)
        // The device's log is acknowledged once the events are journalled.
        try await waitUntil("acks to reach the devices") { door.logStatus.ack == 1 && gate.logStatus.ack == 1 && lift.logStatus.ack == 1 }
        // Retained state and the gateway's online status.
        try await waitUntil("retained door state") {
            subscriber.messages.contains { $0.topic == "accessgw/test-site/door-3e/state" && $0.payload.contains(#""door":"closed""#) }
        }
        #expect(subscriber.messages.contains { $0.topic == "accessgw/test-site/gateway/gw-test/status" && $0.payload.contains("online") })
        await #expect(harness.stop() == 0)
    }

    @Test func brokerOutageLosesNothingAndKeepsPerDeviceOrder() async throws {
        let harness = try GatewayHarness()
        let simulator = try threeKinds()
        try harness.configure(buses: simulator.busYAML, devices: Self.devicesYAML)
        try await harness.start()
        harness.broker.stop()
        for round in 0..<20 {
            for device in simulator.devices { device.record(code: 33, value: UInt32(round)) }
        }
        try await waitUntil("all 60 events acknowledged by the gateway while the broker is down") {
            simulator.devices.allSatisfy { $0.logStatus.ack == 20 }
        }
        try harness.broker.restart()
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/device.restarted", on: harness.broker)
        let events = try await subscriber.waitForEvents("60 events after the broker came back", timeout: .seconds(40)) { $0.count >= 60 }
        for device in ["door-3e", "gate-1", "lift-2"] {
            let seqs = events.filter { $0.device == device }.compactMap(\.seq)
            #expect(Array(Set(seqs)).sorted() == Array(1...20), "\(device) lost events")
            #expect(seqs == seqs.sorted(), "\(device) out of order")
        }
        await #expect(harness.stop() == 0)
    }

    @Test func crashedGatewayLosesNothingAndRepublishesWithTheSameIds() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        try harness.configure(buses: simulator.busYAML, devices: """
          - id: door-3e
            profile: face-door
            bus: lan
            unit: 1
            poll: 20ms
        """)
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: harness.broker)
        try await harness.start()
        let door = simulator.devices[0]
        for round in 0..<3 {
            for i in 0..<150 { door.record(code: 16, point: Int16(i % 4)) }
            try await waitUntil("the gateway to be mid-drain") { door.logStatus.ack > UInt32(round * 150 + 20) }
            harness.crash()
            try await harness.start()
        }
        try await waitUntil("every event acknowledged", timeout: .seconds(30)) { door.logStatus.ack == 450 }
        let events = try await subscriber.waitForEvents("450 distinct door.opened events", timeout: .seconds(30)) { events in
            Set(events.filter { $0.type == "door.opened" }.map(\.id)).count >= 450
        }
        let opened = events.filter { $0.type == "door.opened" }
        #expect(Set(opened.compactMap(\.seq)) == Set(1...450))
        // A redelivered event carries the same id: one id per seq, never two.
        let idsPerSeq = Dictionary(grouping: opened, by: { $0.seq ?? 0 }).mapValues { Set($0.map(\.id)).count }
        #expect(idsPerSeq.values.allSatisfy { $0 == 1 })
        await #expect(harness.stop() == 0)
    }
}

@Suite("crash between journal commit and device ack")
struct CommitAckCrashTests {
    @Test func killedBetweenJournalCommitAndAckLosesNothingAndKeepsOneIdPerEvent() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        try harness.configure(buses: simulator.busYAML, devices: "  - { id: door-3e, profile: face-door, bus: lan, unit: 1, poll: 50ms }")
        let door = simulator.devices[0]
        for i in 0..<10 { door.record(code: 16, point: Int16(i)) }
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/door.opened", on: harness.broker)
        let crashing = try ChildProcess(GatewayHarness.binary, ["run", "--config", harness.configPath],
                                        environment: ["ACCESSGW_CRASH_AFTER_COMMITS": "1"])
        #expect(crashing.wait() == 86, "the gateway should die at the crash point: \(crashing.text)")
        // Committed to the journal, never acknowledged to the device.
        #expect(door.logStatus.ack == 0)
        let journalled = try await harness.accessgw(["tail", "--journal", harness.journalPath, "--type", "door.opened", "-n", "100", "--json"])
        let committed = journalled.output.split(separator: "\n").count
        #expect(committed >= 1 && committed <= 3, "one window of records was committed: \(journalled.output)")

        try await harness.start()
        try await waitUntil("all ten events acknowledged after the restart") { door.logStatus.ack == 10 }
        let events = try await subscriber.waitForEvents("ten door.opened events") { Set($0.compactMap(\.seq)).count == 10 }
        #expect(Set(events.compactMap(\.seq)) == Set(1...10))
        let idsPerSeq = Dictionary(grouping: events, by: { $0.seq ?? 0 }).mapValues { Set($0.map(\.id)) }
        #expect(idsPerSeq.values.allSatisfy { $0.count == 1 })
        let stored = try await harness.accessgw(["tail", "--journal", harness.journalPath, "--type", "door.opened", "-n", "100", "--json"])
        #expect(stored.output.split(separator: "\n").count == 10, "each event stored once")
        await #expect(harness.stop() == 0)
    }
}

@Suite("device clock")
struct DeviceClockTests {
    @Test func skewedClockIsReportedAndSetWhenTimeSyncIsOn() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .plateReader, unit: 1), SimulatedDevice(kind: .faceDoor, unit: 2)])
        let (gate, door) = (simulator.devices[0], simulator.devices[1])
        gate.setClock(offsetSeconds: -45, synchronised: false)
        door.setClock(offsetSeconds: 120, synchronised: false)
        try harness.configure(buses: simulator.busYAML, devices: """
          - { id: gate-1, profile: plate-reader, bus: lan, unit: 1, time_sync: true }
          - { id: door-2, profile: face-door, bus: lan, unit: 2, time_sync: false }
        """, gatewayExtra: "  host_clock: trusted")  // the test machine's own clock may be unsynchronised
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/device.clock_skew", on: harness.broker)
        try await harness.start()
        let events = try await subscriber.waitForEvents("clock skew of both devices") { Set($0.map(\.device)) == ["gate-1", "door-2"] }
        let gateSkew = try #require(events.first { $0.device == "gate-1" }?.data["skew_seconds"] as? Int)
        let doorSkew = try #require(events.first { $0.device == "door-2" }?.data["skew_seconds"] as? Int)
        #expect((-47 ... -43).contains(gateSkew))
        #expect((118...122).contains(doorSkew))
        func clockOffset(_ device: SimulatedDevice) throws -> Int64 {
            let words = try device.readRegisters(address: 12, count: 2)
            return Int64(UInt32(words[0]) << 16 | UInt32(words[1])) - Int64(Date().timeIntervalSince1970)
        }
        try await waitUntil("the gate's clock to be set") { abs(try clockOffset(gate)) <= 2 }
        #expect(abs(try clockOffset(door) - 120) <= 2, "time_sync: false leaves the clock alone")
        await #expect(harness.stop() == 0)
    }
}
