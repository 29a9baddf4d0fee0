import Foundation
import Simulators
import Testing
import TestSupport

@Suite("end to end: accessgw tail, status, check, probe and simulate")
struct OperatorCommandsEndToEndTests {
    @Test func tailAndStatusReadTheJournalTheDaemonWrites() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1), SimulatedDevice(kind: .plateReader, unit: 2)])
        let (door, gate) = (simulator.devices[0], simulator.devices[1])
        try harness.configure(buses: simulator.busYAML, devices: """
          - id: door-3e
            profile: face-door
            bus: lan
            unit: 1
            poll: 50ms
          - id: gate-1
            profile: plate-reader
            bus: lan
            unit: 2
            poll: 50ms
        """)
        try await harness.start()
        for i in 0..<4 { door.record(code: 1, point: 1, direction: 1, value: 900 + UInt32(i), subject: "P-000\(i)") }
        for _ in 0..<3 { door.record(code: 16, point: 1) }
        try await waitUntil("the door's 7 events journalled") { door.logStatus.ack == 7 }
        gate.record(code: 2, point: 1, direction: 1, value: 880, extra: 1, subject: "云A12345")
        try await waitUntil("all 8 events journalled") { door.logStatus.ack == 7 && gate.logStatus.ack == 1 }

        let journal = harness.journalPath
        let lastFive = try await harness.accessgw(["tail", "-n", "5", "--journal", journal])
        #expect(lastFive.status == 0)
        let lines = lastFive.output.split(separator: "\n")
        #expect(lines.count == 5, "\(lastFive.output)")
        #expect(lines.last?.contains("gate-1") == true && lines.last?.contains("plate 云A12345") == true, "newest last: \(lines)")

        let doorOnly = try await harness.journalEvents(["-n", "100", "--device", "door-3e"])
        #expect(!doorOnly.isEmpty && doorOnly.allSatisfy { ($0["data"] as? [String: Any])?["device"] as? String == "door-3e" })
        #expect(doorOnly.filter { ($0["data"] as? [String: Any])?["seq"] != nil }.count == 7)

        let access = try await harness.journalEvents(["-n", "100", "--type", "access.*"])
        #expect(access.map { $0["type"] as? String ?? "" } == Array(repeating: "access.granted", count: 4) + ["access.denied"])
        for event in access {
            #expect(event["specversion"] as? String == "1.0")
            #expect((event["id"] as? String)?.hasPrefix("test-site/") == true)
            #expect(event["source"] as? String != nil && event["time"] as? String != nil)
        }
        #expect((access.last?["data"] as? [String: Any])?["reason"] as? String == "not_registered")

        // -f prints an event journalled after it started.
        let follower = try ChildProcess(GatewayHarness.binary, ["tail", "-f", "-n", "1", "--journal", journal, "--type", "door.*"])
        defer { follower.stop(signal: SIGKILL) }
        try await waitUntil("tail -f to print the newest door event first") { follower.text.contains("door.opened") }
        door.record(code: 19, point: 2, value: 45)
        try await waitUntil("tail -f to print door.held_open (output: \(follower.text))") {
            follower.text.contains("door.held_open")
        }
        let followed = follower.text.split(separator: "\n").filter { $0.contains("door.held_open") }
        #expect(followed.count == 1)
        #expect(followed.first?.contains("seconds 45") == true && followed.first?.hasSuffix("ALARM") == true, "\(followed)")

        let status = try await eventually("status showing both devices online and the broker connected") { () -> [String: Any]? in
            let status = try await harness.statusJSON()
            guard let snapshot = status["status"] as? [String: Any], let devices = snapshot["devices"] as? [[String: Any]],
                  devices.count == 2, devices.allSatisfy({ $0["status"] as? String == "online" }),
                  (snapshot["broker"] as? [String: Any])?["connected"] as? Bool == true else { return nil }
            return status
        }
        #expect(status["daemon_running"] as? Bool == true)
        let human = try await harness.accessgw(["status", "--journal", journal])
        #expect(human.status == 0)
        #expect(human.output.contains("door-3e") && human.output.contains("gate-1") && human.output.contains("connected"), "\(human.output)")
        await #expect(harness.stop() == 0)
    }

    @Test func checkExits78WithFileAndLineForABrokenConfigAnd0WithTheDeviceTable() async throws {
        let harness = try GatewayHarness()
        try harness.configure(buses: "  - id: lan\n    tcp: { host: 127.0.0.1, port: 1502 }\n    timeout: 300ms", devices: """
          - id: door-3e
            profile: face-door
            bus: lan
            unit: 1
            poll: 200ms
            location: { building: "3", entrance: east }
        """)
        let good = try await harness.accessgw(["check", "--config", harness.configPath])
        #expect(good.status == 0, "\(good.output)")
        #expect(good.output.contains("\(harness.configPath): ok"), "\(good.output)")
        let row = try #require(good.output.split(separator: "\n").first { $0.contains("door-3e") }, "\(good.output)")
        #expect(row.contains("face-door") && row.contains("lan"), "\(row)")

        let broken = try String(contentsOfFile: harness.configPath, encoding: .utf8)
            .replacingOccurrences(of: "    poll: 200ms", with: "    pol: 200ms")
            .replacingOccurrences(of: "timeout: 300ms", with: "timeout: 300")
        try broken.write(toFile: harness.configPath, atomically: true, encoding: .utf8)
        let lines = broken.split(separator: "\n", omittingEmptySubsequences: false)
        let timeoutLine = try #require(lines.firstIndex { $0.contains("timeout: 300") }) + 1
        let pollLine = try #require(lines.firstIndex { $0.contains("pol: 200ms") }) + 1
        let bad = try await harness.accessgw(["check", "--config", harness.configPath])
        #expect(bad.status == 78, "\(bad.output)")
        #expect(bad.output.contains("\(harness.configPath):\(timeoutLine): buses[0].timeout: '300' is not a duration"), "\(bad.output)")
        #expect(bad.output.contains("\(harness.configPath):\(pollLine): devices[0].pol: unknown key (did you mean 'poll'?)"),
                "\(bad.output)")
        #expect(!bad.output.contains(": ok:") && !bad.output.contains("face-door"), "no device table for a broken config")
    }

    @Test func simulateExits78ListingEveryProblemOfABrokenSimulatorConfig() async throws {
        let directory = try makeTemporaryDirectory("accessgw-simulate")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("sim.yaml").path
        try "devices:\n  - kind: door\n    unit: 0\n    tcp: { port: 0 }\n".write(toFile: path, atomically: true, encoding: .utf8)
        let result = try await ChildProcess.run(GatewayHarness.binary, ["simulate", "--config", path])
        #expect(result.status == 78, "\(result.output)")
        #expect(result.output.contains("\(path):2: devices[0].kind: 'door' is not one of face-door, plate-reader, elevator"),
                "\(result.output)")
        #expect(result.output.contains("\(path):3: devices[0].unit: 0 is out of range 1...247"), "\(result.output)")
    }

    @Test func probePrintsTheIdentityAndADecodedPlate() async throws {
        let gate = SimulatedDevice(kind: .plateReader, unit: 2, serial: "LPR-PROBE-01")
        gate.record(code: 1, point: 1, direction: 1, value: 962, extra: 1 << 16 | 5, subject: "云A12345")
        let simulator = try TCPSimulator([gate])
        let profile = GatewayHarness.repository.appendingPathComponent("Devices/plate-reader.yaml").path
        let probe = try await ChildProcess.run(GatewayHarness.binary, ["probe", "--profile", profile,
                                                                 "--tcp", "127.0.0.1:\(simulator.server.port)", "--unit", "2"])
        #expect(probe.status == 0, "\(probe.output)")
        #expect(probe.output.contains("LPR-PROBE-01"), "identity with the serial: \(probe.output)")
        #expect(probe.output.contains("head_seq 1, tail_seq 1, boot_id 1, ack_seq 0, unread 1"), "\(probe.output)")
        let event = try #require(probe.output.split(separator: "\n").first { $0.contains("#1 ") }, "\(probe.output)")
        #expect(event.contains("access.granted") && event.contains("plate 云A12345") && event.contains("colour green"), "\(event)")
        #expect(gate.logStatus.ack == 0, "probe only reads")
    }

    /// Issue 7 finding 11: a subject with ESC/BEL sequences (screen clear, title change) reaches neither the
    /// operator's terminal through `probe` and `tail` nor the log raw.
    @Test func escapeSequencesInASubjectAreShownNotObeyed() async throws {
        let hostile = "\u{1B}[2J\u{1B}]0;pwned\u{07}P-1"
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let door = simulator.devices[0]
        door.record(code: 1, point: 1, direction: 1, value: 900, subject: hostile)
        let profile = GatewayHarness.repository.appendingPathComponent("Devices/face-door.yaml").path
        let probe = try await ChildProcess.run(GatewayHarness.binary, ["probe", "--profile", profile,
                                                                 "--tcp", "127.0.0.1:\(simulator.server.port)", "--unit", "1"])
        #expect(probe.status == 0, "\(probe.output)")
        #expect(!probe.output.contains("\u{1B}") && !probe.output.contains("\u{07}"), "raw escape in probe: \(probe.output)")
        #expect(probe.output.contains(#"person \e[2J\e]0;pwned\aP-1"#), "\(probe.output)")

        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        try await harness.start()
        try await waitUntil("the event journalled") { door.logStatus.ack == 1 }
        for arguments in [["tail", "--journal", harness.journalPath], ["tail", "--journal", harness.journalPath, "--json"],
                          ["status", "--journal", harness.journalPath], ["status", "--journal", harness.journalPath, "--json"]] {
            let (_, output) = try await harness.accessgw(arguments)
            #expect(!output.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || (0x80...0x9F).contains($0.value) },
                    "raw control character in \(arguments.joined(separator: " ")): \(output)")
        }
        let (_, tail) = try await harness.accessgw(["tail", "--journal", harness.journalPath])
        #expect(tail.contains(#"person \e[2J\e]0;pwned\aP-1"#), "\(tail)")
        #expect(!harness.log.contains("\u{1B}"), "raw escape in the log")
        await #expect(harness.stop() == 0)
    }
}
