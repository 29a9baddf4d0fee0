import Foundation
import RequestAuthority
import Simulators
import Testing
import TestSupport

@Suite("commands end to end: over a pseudo-terminal, and delivered late from a persistent session", .serialized)
struct CommandDeliveryEndToEndTests {
    static func topic(_ device: String, _ command: String) -> String { "accessgw/test-site/\(device)/command/\(command)" }

    @Test func aSignedOpenOverRS485IsOneWriteThenWrittenThenExecuted() async throws {
        let harness = try GatewayHarness()
        let door = SimulatedDevice(kind: .faceDoor, unit: 1, lockReleaseMilliseconds: 600_000)
        let line = try await RTUSimulator([door, SimulatedDevice(kind: .plateReader, unit: 2)])
        try harness.configure(buses: line.busYAML(), devices: [
            ReloadEndToEndTests.device("door-1", profile: "face-door", bus: "b3-rs485", unit: 1, poll: "200ms"),
            ReloadEndToEndTests.device("gate-2", profile: "plate-reader", bus: "b3-rs485", unit: 2, poll: "200ms"),
        ].joined(separator: "\n"))
        let pm = try await CommandIssuer(id: "pm-kunming", broker: harness.broker, directory: harness.directory)
        try harness.enableRequests(from: pm, commands: "[open]")
        let events = try await Subscriber.subscribed(to: "accessgw/test-site/+/event/#", on: harness.broker)
        try await harness.start()
        // Both devices have a backlog on the line while the command arrives: it must still go first.
        for i in 0..<20 {
            door.record(code: 16, point: Int16(i % 4 + 1))
            line.devices[1].record(code: 1, point: 1, direction: 1, value: 950, extra: 1, subject: "云A0000\(i % 10)")
        }
        try await waitUntil("the door online") { events.events.contains { $0.device == "door-1" && $0.type == "device.online" } }

        try await pm.send(topic: Self.topic("door-1", "open"),
                    payload: CommandIssuer.payload(id: "rtu-open-1", issuer: "pm-kunming", args: #"{"door":2}"#),
                    correlation: "rtu-1")
        let reply = try await pm.reply("rtu-1")
        #expect(reply.status == "written" && reply.duplicate == false, "\(reply.object)")
        #expect(reply.object["id"] as? String == "rtu-open-1" && reply.object["device"] as? String == "door-1")
        #expect(reply.topic == "\(pm.replyTopic)/rtu-1" && reply.correlation == "rtu-1")
        // Exactly one command-block write reached the device over the line, and it executed it once.
        #expect(door.commandWriteCount == 1)
        #expect(door.executedCommandCount == 1)
        #expect(door.stateRegisters[1] == 1)   // lock released
        let audit = try await events.waitForEvents("command.written and command.executed from the door") { events in
            events.contains { $0.type == "command.written" && $0.device == "door-1" }
                && events.contains { $0.type == "command.executed" && $0.device == "door-1" }
        }
        let executed = try #require(audit.first { $0.type == "command.executed" && $0.device == "door-1" })
        #expect(executed.data["command_id"] as? String == "rtu-open-1" && executed.data["issuer"] as? String == "pm-kunming")
        let written = try #require(audit.first { $0.type == "command.written" && $0.device == "door-1" })
        #expect(written.data["command_id"] as? String == "rtu-open-1")
        // The backlogs still drain: every recorded event arrives, in order per device.
        let drained = try await events.waitForEvents("both backlogs") { events in
            events.filter { $0.seq != nil && $0.type != "command.executed" }.count >= 40
        }
        #expect(drained.filter { $0.device == "gate-2" && $0.seq != nil }.compactMap(\.seq) == Array(1...20))
        #expect(line.server.statistics.crcErrors == 0)
        await #expect(harness.stop() == 0)
    }

    @Test func aRequestQueuedInThePersistentSessionWhileTheGatewayWasDownIsNeverExecutedLate() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        try harness.configure(buses: simulator.busYAML, devices: ReloadEndToEndTests.device("door-3e", profile: "face-door", bus: "lan",
                                                                                           unit: 1, poll: "100ms"),
                              mqttExtra: "  session_expiry: 10m")
        let pm = try await CommandIssuer(id: "pm-kunming", broker: harness.broker, directory: harness.directory)
        try harness.enableRequests(from: pm, commands: "[open]")
        let events = try await Subscriber.subscribed(to: "accessgw/test-site/+/event/#", on: harness.broker)
        let door = simulator.devices[0]

        // The first run leaves a session with the command subscription on the broker.
        try await harness.start()
        await #expect(harness.stop() == 0)

        // While the gateway is down, two QoS 1 requests wait in its session: one with a 1 s TTL, one with 60 s.
        try await pm.send(topic: Self.topic("door-3e", "open"),
                    payload: CommandIssuer.payload(id: "queued-short", issuer: "pm-kunming", ttlMillis: 1000), correlation: "short")
        try await pm.send(topic: Self.topic("door-3e", "open"),
                    payload: CommandIssuer.payload(id: "queued-long", issuer: "pm-kunming", ttlMillis: 60_000), correlation: "long")
        // The gateway comes back past the first one's deadline.
        try await Task.sleep(for: .milliseconds(1500))
        try await harness.start()

        let late = try await pm.reply("short")
        #expect(late.status == "expired", "\(late.object)")
        let timely = try await pm.reply("long")
        #expect(timely.status == "written", "\(timely.object)")
        #expect(door.executedCommandCount == 1, "only the request still within its deadline is executed")
        let audit = try await events.waitForEvents("command.expired audited") { events in
            events.contains { $0.type == "command.expired" }
        }
        #expect(audit.first { $0.type == "command.expired" }?.data["command_id"] as? String == "queued-short")
        #expect(!audit.contains { $0.type == "command.written" && $0.data["command_id"] as? String == "queued-short" })
        await #expect(harness.stop() == 0)
    }

    @Test func aReloadAppliesNewIssuersKeysAndAllowRulesAndSaysThatSwitchingCommandsOffNeedsARestart() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1), SimulatedDevice(kind: .elevator, unit: 2)])
        let devices = [
            ReloadEndToEndTests.device("door-3e", profile: "face-door", bus: "lan", unit: 1, poll: "100ms"),
            ReloadEndToEndTests.device("lift-2", profile: "elevator", bus: "lan", unit: 2, poll: "100ms"),
        ].joined(separator: "\n")
        let pm = try await CommandIssuer(id: "pm-kunming", broker: harness.broker, directory: harness.directory)
        let ops = try await CommandIssuer(id: "ops", broker: harness.broker, directory: harness.directory)
        func configure(_ commands: String) throws {
            try harness.configure(buses: simulator.busYAML, devices: devices)
            try (String(contentsOfFile: harness.configPath, encoding: .utf8) + "\n" + commands)
                .write(toFile: harness.configPath, atomically: true, encoding: .utf8)
        }
        func reload(_ number: Int) async throws {
            let process = try #require(harness.gateway)
            kill(process.process.processIdentifier, SIGHUP)
            try await waitUntil("reload \(number) (log: \(harness.log))", timeout: .seconds(30)) {
                harness.log.components(separatedBy: "reloaded:").count - 1 >= number
            }
        }
        try harness.configure(buses: simulator.busYAML, devices: devices)
        try harness.enableRequests(from: pm, commands: "[open]")
        try await harness.start()
        try await pm.send(topic: Self.topic("door-3e", "open"), payload: CommandIssuer.payload(id: "before", issuer: "pm-kunming"),
                    correlation: "before")
        #expect(try await pm.reply("before").status == "written")

        // The property manager loses the doors, gets the lift; a new issuer appears: applied without a restart.
        try configure("""
        commands:
          enabled: true
          issuers:
            - id: pm-kunming
              public_key_file: \(pm.publicKeyFile)
              allow:
                - { devices: ["lift-*"], commands: [call] }
            - id: ops
              public_key_file: \(ops.publicKeyFile)
              allow:
                - { devices: ["door-*"], commands: [open] }
        """)
        try await reload(1)
        #expect(harness.log.contains("commands: 2 issuer(s) applied"), "\(harness.log)")
        try await pm.send(topic: Self.topic("door-3e", "open"), payload: CommandIssuer.payload(id: "after-1", issuer: "pm-kunming"),
                    correlation: "after-1")
        let refused = try await pm.reply("after-1")
        #expect(refused.status == "rejected" && refused.reason == "not_permitted", "\(refused.object)")
        try await pm.send(topic: Self.topic("lift-2", "call"),
                    payload: CommandIssuer.payload(id: "after-2", issuer: "pm-kunming", args: #"{"floor":3}"#), correlation: "after-2")
        #expect(try await pm.reply("after-2").status == "written")
        try await ops.send(topic: Self.topic("door-3e", "open"), payload: CommandIssuer.payload(id: "after-3", issuer: "ops"),
                     correlation: "after-3")
        #expect(try await ops.reply("after-3").status == "written")

        // A new key for ops (its old one no longer verifies) is applied too.
        let newKey = try Ed25519PrivateKey()
        try newKey.publicKey.pem().write(toFile: ops.publicKeyFile, atomically: true, encoding: .utf8)
        try await reload(2)
        try await ops.send(topic: Self.topic("door-3e", "open"), payload: CommandIssuer.payload(id: "old-key", issuer: "ops"),
                     correlation: "old-key")
        try await ops.send(topic: Self.topic("door-3e", "open"), payload: CommandIssuer.payload(id: "new-key", issuer: "ops"),
                     correlation: "new-key", signer: newKey)
        #expect(try await ops.reply("new-key").status == "written")
        // The old key no longer authenticates: no reply at all (SPEC 4.1), the rejection is only audited.
        #expect(!ops.received.contains { $0.correlation == "old-key" })

        // Switching commands off is not applied: the reload says a restart is needed, and commands still run.
        try configure("commands:\n  enabled: false")
        try await reload(3)
        #expect(harness.log.contains("changes to commands.enabled take effect only after a restart"), "\(harness.log)")
        try await ops.send(topic: Self.topic("door-3e", "open"), payload: CommandIssuer.payload(id: "still", issuer: "ops"),
                     correlation: "still", signer: newKey)
        #expect(try await ops.reply("still").status == "written")
        await #expect(harness.stop() == 0)
    }
}
