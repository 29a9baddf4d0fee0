import Foundation
import Simulators
import Testing
import TestSupport

@Suite("end to end: one master per RS-485 line")
struct ExclusiveBusEndToEndTests {
    @Test func probeOnALineTheDaemonPollsIsRefusedNamingTheDaemonAndTheDaemonKeepsReading() async throws {
        let harness = try GatewayHarness()
        let simulator = try await RTUSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let door = simulator.devices[0]
        try harness.configure(buses: simulator.busYAML(), devices: """
          - id: door-3e
            profile: face-door
            bus: b3-rs485
            unit: 1
            poll: 50ms
        """)
        try await harness.start()
        door.record(code: 16, point: 1)
        try await waitUntil("the first event journalled") { door.logStatus.ack == 1 }
        let daemon = try #require(harness.gateway).process.processIdentifier

        let profile = GatewayHarness.repository.appendingPathComponent("Devices/face-door.yaml").path
        let probe = try await harness.accessgw(["probe", "--profile", profile, "--rtu", simulator.pair.masterEnd, "--baud", "9600", "--unit", "1"])
        #expect(probe.status == 1, "\(probe.output)")
        #expect(probe.output.contains("\(simulator.pair.masterEnd) is in use by pid \(daemon) ("), "\(probe.output)")
        #expect(probe.output.contains("accessgw run"), "names the daemon: \(probe.output)")

        // The refused probe sent nothing: the daemon reads on, and no bad frame was counted.
        door.record(code: 16, point: 2)
        try await waitUntil("the second event journalled") { door.logStatus.ack == 2 }
        #expect(harness.logLines(containing: "bad").isEmpty, "\(harness.log)")
        await #expect(harness.stop() == 0)

        // Once the daemon stopped, the line is free.
        let free = try await harness.accessgw(["probe", "--profile", profile, "--rtu", simulator.pair.masterEnd, "--baud", "9600", "--unit", "1"])
        #expect(free.status == 0, "\(free.output)")
    }

    /// `probe --config` while the daemon owns the pty line: the daemon reads the device on its own bus thread between
    /// polls; nothing else talks on the line, and the device's events are delivered exactly once, in order.
    @Test func probeThroughTheDaemonIsServedBetweenPollsAndTheEventsStayIntact() async throws {
        let harness = try GatewayHarness()
        let simulator = try await RTUSimulator([SimulatedDevice(kind: .faceDoor, unit: 1), SimulatedDevice(kind: .faceDoor, unit: 2)])
        let door = simulator.devices[0]
        // A generous timeout: on a loaded machine a late reply to a timed-out read would be refused by the next
        // request (as it must) and show up as a bad reply, which this test counts as interference.
        try harness.configure(buses: simulator.busYAML(timeout: "1s"), devices: """
          - { id: door-3e, profile: face-door, bus: b3-rs485, unit: 1, poll: 50ms }
          - { id: door-3w, profile: face-door, bus: b3-rs485, unit: 2, poll: 50ms }
        """)
        let subscriber = try await Subscriber.subscribed(to: "accessgw/#", on: harness.broker)
        try await harness.start()
        door.record(code: 16, point: 1)
        try await waitUntil("the first event journalled") { door.logStatus.ack == 1 }

        // Events keep coming while three probes run through the daemon.
        for round in 0..<3 {
            for point in 0..<4 { door.record(code: 16, point: Int16(1 + point), subject: "P-\(round)-\(point)") }
            let probe = try await harness.accessgw(["probe", "--config", harness.configPath, "door-3e"])
            #expect(probe.status == 0, "\(probe.output)")
            #expect(probe.output.contains("device    door-3e  profile face-door"), "\(probe.output)")
            #expect(probe.output.contains("events    head_seq "), "\(probe.output)")
            #expect(probe.output.contains("read by the running daemon"), "\(probe.output)")
            #expect(!probe.output.contains("in use by"), "\(probe.output)")
        }
        let all = try await harness.accessgw(["probe", "--config", harness.configPath, "--all"])
        #expect(all.status == 0, "\(all.output)")
        #expect(all.output.contains("device    door-3e") && all.output.contains("device    door-3w"), "\(all.output)")
        #expect(all.output.contains("2 of 2 device(s) answered"), "\(all.output)")
        let unknown = try await harness.accessgw(["probe", "--config", harness.configPath, "door-9"])
        #expect(unknown.status != 0 && unknown.output.contains("door-9"), "\(unknown.output)")

        let events = try await subscriber.waitForEvents("13 events of door-3e") { events in
            events.filter { $0.device == "door-3e" && $0.seq != nil }.count >= 13
        }
        let seqs = events.filter { $0.device == "door-3e" }.compactMap(\.seq)
        #expect(seqs == Array(1...13), "every event once, in order: \(seqs)")
        #expect(door.logStatus.ack == 13)
        #expect(harness.logLines(containing: "bad").isEmpty, "\(harness.log)")
        #expect(!harness.log.contains("device offline"), "\(harness.log)")
        #expect(harness.logLines(containing: "log.kind=gateway.probe").count == 5, "\(harness.log)")
        #expect(simulator.server.statistics.crcErrors == 0 && simulator.server.statistics.malformedFrames == 0)
        await #expect(harness.stop() == 0)

        // Without the daemon, --all reads the line itself.
        let direct = try await harness.accessgw(["probe", "--config", harness.configPath, "--all"])
        #expect(direct.status == 0, "\(direct.output)")
        #expect(direct.output.contains("2 of 2 device(s) answered") && !direct.output.contains("running daemon"), "\(direct.output)")
    }
}
