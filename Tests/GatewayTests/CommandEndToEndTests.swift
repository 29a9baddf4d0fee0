import Foundation
import RequestAuthority
import Simulators
import Testing
import TestSupport

@Suite("commands end to end: issuer → mosquitto → accessgw run → bus → device → events", .serialized)
struct CommandEndToEndTests {
    /// The three kinds of the end-to-end tests on `lan`, and a door on a bus where nothing answers.
    static let devicesYAML = EndToEndTests.devicesYAML + """

      - id: door-dead
        profile: face-door
        bus: dead
        unit: 1
        poll: 50ms
    """

    static func commandsYAML(pm: CommandIssuer, ops: CommandIssuer) -> String {
        """
        commands:
          enabled: true
          default_ttl: 10s
          max_ttl: 60s
          issuers:
            - id: \(pm.id)
              public_key_file: \(pm.publicKeyFile)
              allow:
                - { devices: ["door-*", "gate-*"], commands: [open, close] }
                - { devices: ["lift-*"], commands: [call] }
            - id: \(ops.id)
              public_key_file: \(ops.publicKeyFile)
              allow:
                - { devices: ["*"], commands: [open, call] }
        """
    }

    struct Site {
        let harness: GatewayHarness
        let simulator: TCPSimulator
        let pm: CommandIssuer
        let ops: CommandIssuer
        let events: Subscriber
        var door: SimulatedDevice { simulator.devices[0] }
        var gate: SimulatedDevice { simulator.devices[1] }
        var lift: SimulatedDevice { simulator.devices[2] }

        func topic(_ device: String, _ command: String) -> String { "accessgw/test-site/\(device)/command/\(command)" }
    }

    static func site(busTimeout: String = "300ms") async throws -> Site {
        let harness = try GatewayHarness()
        // The door's lock stays released long enough to be seen released on a loaded machine (default 5 s).
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1, lockReleaseMilliseconds: 600_000),
                                          SimulatedDevice(kind: .plateReader, unit: 2),
                                          SimulatedDevice(kind: .elevator, unit: 3)])
        let pm = try await CommandIssuer(id: "pm-kunming", broker: harness.broker, directory: harness.directory)
        let ops = try await CommandIssuer(id: "ops", broker: harness.broker, directory: harness.directory)
        let buses = simulator.busYAML.replacingOccurrences(of: "timeout: 300ms", with: "timeout: \(busTimeout)")
            + "\n  - id: dead\n    tcp: { host: 127.0.0.1, port: \(freeLoopbackPort()) }\n    timeout: 100ms"
        try harness.configure(buses: buses, devices: devicesYAML, gatewayExtra: "")
        try (String(contentsOfFile: harness.configPath, encoding: .utf8) + "\n" + commandsYAML(pm: pm, ops: ops))
            .write(toFile: harness.configPath, atomically: true, encoding: .utf8)
        let events = try await Subscriber.subscribed(to: "accessgw/test-site/+/event/#", on: harness.broker)
        try await harness.start()
        return Site(harness: harness, simulator: simulator, pm: pm, ops: ops, events: events)
    }

    @Test func aSignedOpenIsWrittenOnceRepliedAndExecutedWithTheRequestsIDEvenWhenRedelivered() async throws {
        let site = try await Self.site()
        // A TTL of max_ttl: the redelivery after the restart must still be within its deadline on a loaded machine
        // (past it, rule 6 answers expired before rule 7 is reached).
        let payload = CommandIssuer.payload(id: "pm-7f3a9c1e", issuer: "pm-kunming", ttlMillis: 60_000, args: #"{"door":1}"#)
        try await site.pm.send(topic: site.topic("door-3e", "open"), payload: payload, correlation: "corr-1")
        let reply = try await site.pm.reply("corr-1")
        #expect(reply.status == "written", "\(reply.object)")
        #expect(reply.object["id"] as? String == "pm-7f3a9c1e")
        #expect(reply.object["device"] as? String == "door-3e" && reply.object["command"] as? String == "open")
        #expect(reply.duplicate == false)
        #expect(site.door.executedCommandCount == 1)
        #expect(site.door.stateRegisters[1] == 1)   // lock released
        let executed = try await site.events.waitForEvents("command.executed and command.written") { events in
            events.contains { $0.type == "command.executed" } && events.contains { $0.type == "command.written" }
        }
        let event = try #require(executed.first { $0.type == "command.executed" })
        #expect(event.device == "door-3e")
        #expect(event.data["command_id"] as? String == "pm-7f3a9c1e")
        #expect(event.data["issuer"] as? String == "pm-kunming")
        let written = try #require(executed.first { $0.type == "command.written" })
        #expect(written.data["command_id"] as? String == "pm-7f3a9c1e" && written.data["issuer"] as? String == "pm-kunming")

        // The same request four more times: no second write, the first outcome with duplicate: true.
        for n in 2...5 {
            try await site.pm.send(topic: site.topic("door-3e", "open"), payload: payload, correlation: "corr-1")
            let again = try await site.pm.reply("corr-1", number: n)
            #expect(again.status == "written" && again.duplicate, "\(again.object)")
        }
        #expect(site.door.executedCommandCount == 1)

        // And after a restart: the journal remembers the id.
        await #expect(site.harness.stop() == 0)
        try await site.harness.start()
        try await site.pm.send(topic: site.topic("door-3e", "open"), payload: payload, correlation: "corr-1")
        let afterRestart = try await site.pm.reply("corr-1", number: 6)
        #expect(afterRestart.status == "written" && afterRestart.duplicate, "\(afterRestart.object)")
        #expect(site.door.executedCommandCount == 1)

        // A new request to the same door gets a new device command id and is executed.
        try await site.pm.send(topic: site.topic("door-3e", "open"), payload: CommandIssuer.payload(id: "pm-2", issuer: "pm-kunming"),
                         correlation: "corr-2")
        #expect(try await site.pm.reply("corr-2").status == "written")
        #expect(site.door.executedCommandCount == 2)

        // The operator sees them on the box.
        let tail = try await site.harness.accessgw(["tail", "--config", site.harness.configPath, "--type", "command.*", "-n", "50"])
        #expect(tail.status == 0 && tail.output.contains("command.written") && tail.output.contains("command.executed"), "\(tail.output)")
        let status = try await site.harness.accessgw(["status", "--config", site.harness.configPath])
        #expect(status.output.contains("commands in the last 24 h: ") && status.output.contains(" written"), "\(status.output)")
    }

    @Test func everyBadRequestIsRejectedWithItsReasonWhileEventsKeepFlowing() async throws {
        let site = try await Self.site()
        let pm = site.pm, ops = site.ops
        func expectRejected(_ correlation: String, _ reason: String, by issuer: CommandIssuer? = nil) async throws {
            let reply = try await (issuer ?? pm).reply(correlation)
            #expect(reply.status == "rejected" && reply.reason == reason, "\(correlation): \(reply.object)")
        }
        // Nothing is answered before authentication (SPEC 4.1): the rejection is audited, saying the reply was withheld.
        func expectWithheld(_ commandID: String?, _ reason: String, count: Int = 1) async throws {
            _ = try await site.events.waitForEvents("\(commandID ?? "-") audited as \(reason) without a reply") { events in
                events.filter {
                    $0.type == "command.rejected" && $0.data["reason"] as? String == reason
                        && $0.data["reply_withheld"] as? String == "unauthenticated"
                        && (commandID == nil || $0.data["command_id"] as? String == commandID)
                }.count >= count
            }
        }
        let forger = try Ed25519PrivateKey()
        try await pm.send(topic: site.topic("door-3e", "open"), payload: CommandIssuer.payload(id: "forged", issuer: "pm-kunming"),
                    correlation: "forged", signer: forger)
        try await expectWithheld("forged", "unauthenticated")
        try await pm.send(topic: site.topic("door-3e", "open"), payload: CommandIssuer.payload(id: "stranger", issuer: "stranger"),
                    correlation: "stranger")
        try await expectWithheld("stranger", "unauthenticated")
        try await pm.send(topic: site.topic("door-3e", "open"), payload: CommandIssuer.payload(id: "unsigned", issuer: "pm-kunming"),
                    correlation: "unsigned", signed: false)
        try await expectWithheld("unsigned", "unauthenticated")
        try await pm.send(topic: site.topic("lift-2", "open"), payload: CommandIssuer.payload(id: "wrong-device", issuer: "pm-kunming"),
                    correlation: "wrong-device")
        try await expectRejected("wrong-device", "not_permitted")
        try await ops.send(topic: site.topic("door-3e", "call"), payload: CommandIssuer.payload(id: "unknown-command", issuer: "ops"),
                     correlation: "unknown-command")
        try await expectRejected("unknown-command", "unknown_command", by: ops)
        try await ops.send(topic: site.topic("ghost", "open"), payload: CommandIssuer.payload(id: "ghost", issuer: "ops"),
                     correlation: "ghost")
        try await expectRejected("ghost", "unknown_device", by: ops)
        try await pm.send(topic: site.topic("lift-2", "call"), payload: CommandIssuer.payload(id: "floor-200", issuer: "pm-kunming",
                                                                                         args: #"{"floor":200}"#),
                    correlation: "floor-200")
        try await expectRejected("floor-200", "bad_argument")
        try await pm.send(topic: site.topic("door-3e", "open"), payload: "open the door please", correlation: "not-json")
        try await expectWithheld(nil, "malformed")
        try await pm.send(topic: site.topic("door-3e", "open"),
                    payload: CommandIssuer.payload(id: "old", issuer: "pm-kunming", time: Date().addingTimeInterval(-30)),
                    correlation: "old")
        let old = try await pm.reply("old")
        #expect(old.status == "expired", "\(old.object)")
        try await pm.send(topic: site.topic("door-3e", "open"),
                    payload: CommandIssuer.payload(id: "future", issuer: "pm-kunming", time: Date().addingTimeInterval(60)),
                    correlation: "future")
        try await expectRejected("future", "clock")
        try await pm.send(topic: site.topic("door-3e", "open"), payload: CommandIssuer.payload(id: "retained", issuer: "pm-kunming"),
                    correlation: "retained", retain: true)
        try await expectWithheld(nil, "retained")
        // 20 KiB: refused unparsed. (1 MiB never reaches the gateway: over the Maximum Packet Size of its CONNECT.)
        let huge = CommandIssuer.payload(id: "huge", issuer: "pm-kunming", args: #"{"door":1}"#)
            .replacingOccurrences(of: #""reason":"test""#, with: #""reason":""# + String(repeating: "x", count: 20 << 10) + #"""#)
        let hugeFile = site.harness.directory.appendingPathComponent("huge.json").path
        try huge.write(toFile: hugeFile, atomically: true, encoding: .utf8)
        let published = try await ChildProcess.run("/usr/bin/mosquitto_pub", site.harness.broker.clientArguments + [
            "-V", "mqttv5", "-q", "1", "-t", site.topic("door-3e", "open"), "-f", hugeFile,
            "-D", "publish", "response-topic", "\(pm.replyTopic)/huge", "-D", "publish", "correlation-data", "huge",
        ])
        #expect(published.status == 0)
        try await expectWithheld(nil, "malformed", count: 2)
        #expect(site.door.executedCommandCount == 0 && site.lift.executedCommandCount == 0)
        #expect(!pm.received.contains { ["forged", "stranger", "unsigned", "not-json", "retained", "huge"].contains($0.correlation) },
                "a request that was not authenticated got a reply")

        // 20,000 garbage requests as fast as one client publishes them: counted, bounded, and events keep flowing.
        let garbage = site.harness.directory.appendingPathComponent("garbage.txt").path
        try String(repeating: "{\"id\":\"x\"}\n", count: 20_000).write(toFile: garbage, atomically: true, encoding: .utf8)
        let flood = try ChildProcess("/bin/sh", ["-c", "/usr/bin/mosquitto_pub " + site.harness.broker.clientArguments.joined(separator: " ")
                                                  + " -V mqttv5 -q 0 -t \(site.topic("door-3e", "open")) -l < \(garbage)"])
        site.door.record(code: 1, point: 1, direction: 1, value: 900, subject: "P-during-flood")
        _ = try await site.events.waitForEvents("an access event during the flood") { events in
            events.contains { $0.type == "access.granted" }
        }
        #expect(flood.wait() == 0)
        // Still answering afterwards. The broker may drop messages queued for the gateway while the flood lasts
        // (max_queued_messages), so the request is repeated, with a new id, until one is answered.
        var attempt = 0
        let answered = try await eventually("a command answered after the flood", timeout: .seconds(60)) { () -> CommandIssuer.Reply? in
            attempt += 1
            try await pm.send(topic: site.topic("gate-1", "open"), payload: CommandIssuer.payload(id: "after-flood-\(attempt)", issuer: "pm-kunming"),
                        correlation: "after-flood-\(attempt)")
            return try? await pm.reply("after-flood-\(attempt)", timeout: .seconds(3))
        }
        #expect(answered.status == "written", "\(answered.object)")
        #expect(site.gate.stateRegisters[0] == 1)
        let audited = try await site.events.waitForEvents("rejections audited") { events in
            events.contains { $0.type == "command.rejected" && $0.data["reason"] as? String == "not_permitted" }
        }
        let rejectedPerSecond = audited.filter { $0.type == "command.rejected" }.count
        #expect(rejectedPerSecond < 20_000 / 10, "the flood's rejections are counted, not each published")
    }

    @Test func aTimedOutWriteIsRetriedWithTheSameIDAndExecutedOnceAndOfflineFailsAtOnce() async throws {
        let site = try await Self.site()
        // The door answers every request after 450 ms, past the 300 ms timeout: the write is executed late, unanswered.
        site.door.faults = DeviceFaults(delayMilliseconds: 450)
        try await site.pm.send(topic: site.topic("door-3e", "open"), payload: CommandIssuer.payload(id: "slow-1", issuer: "pm-kunming"),
                         correlation: "slow-1")
        try await waitUntil("the first (timed-out) write executed") { site.door.executedCommandCount == 1 }
        let firstID = site.door.lastExecutedCommandID
        site.door.faults = .none
        let reply = try await site.pm.reply("slow-1")
        #expect(reply.status == "written", "\(reply.object)")
        #expect(site.door.executedCommandCount == 1)
        #expect(site.door.lastExecutedCommandID == firstID)

        // Offline: the dead bus's door has failed three polls long ago.
        try await waitUntil("door-dead offline") {
            site.events.events.contains { $0.type == "device.offline" && $0.device == "door-dead" }
        }
        try await site.pm.send(topic: site.topic("door-dead", "open"), payload: CommandIssuer.payload(id: "to-dead", issuer: "pm-kunming"),
                         correlation: "to-dead")
        let dead = try await site.pm.reply("to-dead")
        #expect(dead.status == "failed" && dead.reason == "offline", "\(dead.object)")
    }

    @Test func aCommandWhoseDeadlinePassesBehindABusyBusIsExpiredAndNeverWritten() async throws {
        let site = try await Self.site(busTimeout: "3s")
        // The gate takes 1.5 s to answer anything: a first command to it holds the bus that long.
        site.gate.faults = DeviceFaults(delayMilliseconds: 1500)
        try await site.pm.send(topic: site.topic("gate-1", "open"), payload: CommandIssuer.payload(id: "gate-slow", issuer: "pm-kunming"),
                         correlation: "gate-slow")
        try await site.pm.send(topic: site.topic("door-3e", "open"),
                         payload: CommandIssuer.payload(id: "door-short", issuer: "pm-kunming", ttlMillis: 400),
                         correlation: "door-short")
        let expired = try await site.pm.reply("door-short")
        #expect(expired.status == "expired", "\(expired.object)")
        #expect(site.door.executedCommandCount == 0)
        #expect(try await site.pm.reply("gate-slow").status == "written")
        let audit = try await site.events.waitForEvents("command.expired") { events in events.contains { $0.type == "command.expired" } }
        #expect(audit.first { $0.type == "command.expired" }?.data["command_id"] as? String == "door-short")
    }

    @Test func accessgwSendSignsWaitsForTheReplyAndExitsZeroOnlyWhenWritten() async throws {
        let site = try await Self.site()
        let keyFile = site.harness.directory.appendingPathComponent("pm-kunming.key").path
        try site.pm.key.pem().write(toFile: keyFile, atomically: true, encoding: .utf8)
        let written = try await site.harness.accessgw(["send", "lift-2", "call", "--arg", "floor=4", "--issuer", "pm-kunming",
                                                 "--key", keyFile, "--config", site.harness.configPath])
        #expect(written.status == 0, "\(written.output)")
        #expect(written.output.contains(#""status":"written""#))
        #expect(site.lift.executedCommandCount == 1)
        let refused = try await site.harness.accessgw(["send", "lift-2", "call", "--arg", "floor=400", "--issuer", "pm-kunming",
                                                 "--key", keyFile, "--broker", "127.0.0.1:\(site.harness.broker.port)",
                                                 "--site", "test-site"])
        #expect(refused.status == 1)
        #expect(refused.output.contains(#""reason":"bad_argument""#), "\(refused.output)")
        // keygen: a pair the gateway and send can use, the private half readable by its owner only.
        let keys = site.harness.directory.appendingPathComponent("keys").path
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
        let made = try await site.harness.accessgw(["keygen", "pm-new", "--dir", keys])
        #expect(made.status == 0, "\(made.output)")
        let mode = try FileManager.default.attributesOfItem(atPath: keys + "/pm-new.key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        _ = try Issuer.load(id: "pm-new", publicKeyFile: keys + "/pm-new.pub", allow: [])
    }
}
