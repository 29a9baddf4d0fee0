import Foundation
import Simulators
import Testing
import TestSupport

@Suite("end to end: check --online, bus load, unit and baud ranges")
struct OnlineCheckEndToEndTests {
    @Test func plainCheckRejectsUnitAndBaudOutOfRangeAndWarnsAboutAnOverloadedBus() async throws {
        let harness = try GatewayHarness()
        let devices = (1...15).map { "  - { id: door-\($0), profile: face-door, bus: b3-rs485, unit: \($0), poll: 200ms }" }
        try harness.configure(buses: "  - id: b3-rs485\n    rtu: { device: /dev/ttyFLEET-none, baud: 9600 }\n    turnaround: 5ms",
                              devices: devices.joined(separator: "\n"))
        let loaded = try await harness.accessgw(["check", "--config", harness.configPath])
        #expect(loaded.status == 0, "\(loaded.output)")
        let warning = try #require(loaded.output.split(separator: "\n").first { $0.hasPrefix("warning: b3-rs485: 15 devices at 200 ms need ") },
                                   "\(loaded.output)")
        let percent = try #require(Int(warning.split(separator: " ")[8]), "\(warning)")
        #expect(percent > 100, "15 header reads of 5/s each at 9600 baud overload the line: \(warning)")

        let fewer = (1...2).map { "  - { id: door-\($0), profile: face-door, bus: b3-rs485, unit: \($0), poll: 1s }" }
        try harness.configure(buses: "  - id: b3-rs485\n    rtu: { device: /dev/ttyFLEET-none, baud: 9600 }", devices: fewer.joined(separator: "\n"))
        let light = try await harness.accessgw(["check", "--config", harness.configPath])
        #expect(light.status == 0 && !light.output.contains("warning:"), "\(light.output)")

        try harness.configure(buses: "  - id: b3-rs485\n    rtu: { device: /dev/ttyFLEET-none, baud: 9601 }", devices: """
          - { id: door-1, profile: face-door, bus: b3-rs485, unit: 0 }
          - { id: door-2, profile: face-door, bus: b3-rs485, unit: 250 }
        """)
        let bad = try await harness.accessgw(["check", "--config", harness.configPath])
        #expect(bad.status == 78, "\(bad.output)")
        #expect(bad.output.contains("buses[0].rtu.baud: 9601 is not a standard baud rate (1200, 2400, 4800, 9600"), "\(bad.output)")
        #expect(bad.output.contains("devices[0].unit: 0 is out of range 1...247"), "\(bad.output)")
        #expect(bad.output.contains("devices[1].unit: 250 is out of range 1...247"), "\(bad.output)")
    }

    @Test func onlineCheckNamesAMissingTtyAnUnreadableSecretAnUnreachableBrokerAndAWrongKind() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1), SimulatedDevice(kind: .faceDoor, unit: 2)])
        let password = harness.directory.appendingPathComponent("broker-password").path
        try "secret\n".write(toFile: password, atomically: true, encoding: .utf8)
        chmod(password, 0o600)
        chmod(harness.directory.path, 0o755)
        try harness.configure(buses: simulator.busYAML + "\n  - id: b3-rs485\n    rtu: { device: /dev/ttyFLEET-missing, baud: 9600 }",
                              devices: doorOnLanYAML + "\n  - { id: gate-1, profile: plate-reader, bus: lan, unit: 2 }",
                              mqttExtra: "  username: gw\n  password_file: \(password)")
        // Nothing listens on the broker's port: the harness's broker is stopped.
        harness.broker.stop()
        let result = try await harness.accessgw(["check", "--config", harness.configPath, "--online", "--user", "nobody"])
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("error: bus b3-rs485: /dev/ttyFLEET-missing does not exist"), "\(result.output)")
        #expect(result.output.contains("error: mqtt.password_file: \(password) is not readable by nobody (it is 0600 "), "\(result.output)")
        #expect(result.output.contains("error: mqtt 127.0.0.1:\(harness.broker.port): "), "\(result.output)")
        #expect(result.output.contains("ok: device door-3e: answers on lan unit 1 as face-door"), "\(result.output)")
        #expect(result.output.contains("error: device gate-1: identity kind is"), "a face door configured as plate reader: \(result.output)")
        #expect(result.output.contains("check --online: 4 problem(s) outside the file"), "\(result.output)")
    }

    @Test func onlineCheckPassesWithAReachableBrokerAndReadableSecrets() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        let result = try await harness.accessgw(["check", "--config", harness.configPath, "--online"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("ok: mqtt 127.0.0.1:\(harness.broker.port): accepted the connection"), "\(result.output)")
        #expect(result.output.hasSuffix("online: ok\n"), "\(result.output)")
    }
}
