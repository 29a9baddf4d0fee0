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
        let probe = try harness.accessgw(["probe", "--profile", profile, "--rtu", simulator.pair.masterEnd, "--baud", "9600", "--unit", "1"])
        #expect(probe.status == 1, "\(probe.output)")
        #expect(probe.output.contains("\(simulator.pair.masterEnd) is in use by pid \(daemon) ("), "\(probe.output)")
        #expect(probe.output.contains("accessgw run"), "names the daemon: \(probe.output)")

        // The refused probe sent nothing: the daemon reads on, and no bad frame was counted.
        door.record(code: 16, point: 2)
        try await waitUntil("the second event journalled") { door.logStatus.ack == 2 }
        #expect(harness.logLines(containing: "bad").isEmpty, "\(harness.log)")
        #expect(harness.stop() == 0)

        // Once the daemon stopped, the line is free.
        let free = try harness.accessgw(["probe", "--profile", profile, "--rtu", simulator.pair.masterEnd, "--baud", "9600", "--unit", "1"])
        #expect(free.status == 0, "\(free.output)")
    }
}
