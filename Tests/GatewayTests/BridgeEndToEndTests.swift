import Foundation
import RequestAuthority
import Simulators
import Testing
import TestSupport

/// `Examples/mosquitto-bridge.conf` installed as it says: copied into the `conf.d` of a compound broker whose
/// mosquitto.conf is Debian's (persistence true, persistence_location, include_dir), with its marked lines, the
/// central broker's address and CA set. gateway → compound broker → bridge (QoS 1, persistent queue) → central
/// broker (TLS, password) → a subscriber with a persistent session, and back: commands, replay requests, replies.
@Suite("end to end: a compound's broker bridged to a central broker", .serialized)
struct BridgeEndToEndTests {
    /// The example as an operator installs it: every line kept but the central broker's address, its CA and the
    /// password (and a quicker reconnect, for the test's sake).
    static func installedExample(central: MosquittoBroker) throws -> String {
        let example = try String(contentsOf: GatewayHarness.repository.appendingPathComponent("Examples/mosquitto-bridge.conf"),
                                 encoding: .utf8)
        return example.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            if line.hasPrefix("address ") { return "address 127.0.0.1:\(central.port)" }
            if line.hasPrefix("bridge_cafile ") { return "bridge_cafile \(central.certificates!.caFile)" }
            if line.hasPrefix("remote_password ") { return "remote_password secret" }
            if line.hasPrefix("restart_timeout ") { return "restart_timeout 1 2" }
            return String(line)
        }.joined(separator: "\n")
    }

    /// The compound's broker: Debian's mosquitto.conf (MosquittoBroker's persistent options are its
    /// `persistence true` and `persistence_location`), then `include_dir` of a conf.d holding the example.
    static func compoundBroker(bridgingTo central: MosquittoBroker) throws -> MosquittoBroker {
        let confD = try makeTemporaryDirectory("conf.d")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: confD.path)
        try installedExample(central: central).write(to: confD.appendingPathComponent("accessgw-bridge.conf"),
                                                     atomically: true, encoding: .utf8)
        return try MosquittoBroker(.init(persistent: true, extraConfig: ["include_dir \(confD.path)"]))
    }

    static let centralUsers = ["bridge-kunming-guandu": "secret", "pm": "pm-secret"]

    @Test func eventsCrossTheBridgeWithNothingLostWhileTheCentralBrokerRestarts() async throws {
        let central = try MosquittoBroker(.init(tls: true, users: Self.centralUsers, persistent: true))
        let compound = try Self.compoundBroker(bridgingTo: central)
        let harness = try GatewayHarness(sharing: compound)
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let door = simulator.devices[0]
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML, site: "kunming-guandu")
        try await waitUntil("the bridge connected (\(central.log))") { central.log.contains("bridge-kunming-guandu") }
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: central, username: "pm",
                                                         password: "pm-secret", sessionID: "pm-central")
        try await harness.start()

        for i in 0..<50 { door.record(code: 16, point: Int16(i % 4 + 1)) }
        _ = try await subscriber.waitForEvents("the first 50 at the centre", timeout: .seconds(30)) { $0.filter { $0.seq != nil }.count >= 50 }

        // The centre goes away mid-stream: the compound keeps taking events and queues them for the bridge.
        central.stop()
        for i in 0..<100 { door.record(code: 17, point: Int16(i % 4 + 1)) }
        try await waitUntil("all 150 acknowledged by the compound") { door.logStatus.ack == 150 }
        try central.restart()
        for i in 0..<50 { door.record(code: 16, point: Int16(i % 4 + 1)) }
        let events = try await subscriber.waitForEvents("all 200 device events at the centre", timeout: .seconds(60)) { events in
            Set(events.compactMap(\.seq)).count >= 200
        }
        #expect(Set(events.compactMap(\.seq)) == Set(1...200), "nothing lost across the bridge")
        #expect(events.allSatisfy { $0.topic.hasPrefix("accessgw/kunming-guandu/door-3e/event/") || $0.seq == nil })
        #expect(compound.log.components(separatedBy: "Connecting bridge (step 1) central").count - 1 >= 2,
                "the bridge reconnected after the restart: \(compound.log)")
        await #expect(harness.stop() == 0)
    }

    /// The compound broker of the example acknowledged events it queued for the bridge while the centre was away,
    /// then lost power (kill -9: its queue was not saved yet). Without receipts those events never reach the centre;
    /// with receipts (the centre is `Examples/subscriber.py --receipts`, whose receipts come back through the
    /// bridge's `receipt` topic `in`) the gateway publishes them again and every one arrives.
    @Test(arguments: [false, true])
    func eventsTheCompoundBrokerLostArriveAgainOnlyWithReceipts(receipts: Bool) async throws {
        let central = try MosquittoBroker(.init(tls: true, users: Self.centralUsers, persistent: true))
        let compound = try Self.compoundBroker(bridgingTo: central)
        let harness = try GatewayHarness(sharing: compound)
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let door = simulator.devices[0]
        let pm = try await CommandIssuer(id: "pm-central", broker: compound, directory: harness.directory)
        let keyFile = harness.directory.appendingPathComponent("pm-central.key").path
        try pm.key.pem().write(toFile: keyFile, atomically: true, encoding: .utf8)
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML, mqttExtra: "  protocol: 5", site: "kunming-guandu")
        try harness.enableRequests(from: pm, devices: #"["*"]"#, commands: "[receipt]",
                                   extra: receipts ? "receipts:\n  enabled: true\n  resend_after: 3s" : "")
        try await waitUntil("the bridge connected (\(central.log))") { central.log.contains("bridge-kunming-guandu") }
        let script = GatewayHarness.repository.appendingPathComponent("Examples/subscriber.py").path
        let centre = try ChildProcess("/usr/bin/env", [
            "python3", "-u", script, "--port", "\(central.port)", "--cafile", central.certificates!.caFile, "--username", "pm",
            "--password", "pm-secret", "--site", "kunming-guandu", "--client-id", "centre-1", "--issuer", "pm-central",
            "--key", keyFile, "--state", harness.directory.appendingPathComponent("centre.json").path,
        ] + (receipts ? ["--receipts"] : []))
        defer { centre.stop(signal: SIGTERM) }
        try await waitUntil("the centre subscribed (\(centre.text))") { centre.text.contains("connected, subscribed") }
        func seqs() -> Set<Int> {
            Set(centre.text.split(separator: "\n").compactMap {
                ((try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any])?["seq"] as? Int
            })
        }
        try await harness.start()
        for _ in 0..<10 { door.record(code: 16, point: 1) }
        try await waitUntil("seqs 1-10 at the centre (\(centre.text))", timeout: .seconds(30)) { seqs() == Set(1...10) }

        // The link to the centre is down: the compound acknowledges 20 events and queues them for the bridge.
        central.stop()
        for _ in 0..<20 { door.record(code: 17, point: 1) }
        try await waitUntil("the compound acknowledged all 30", timeout: .seconds(30)) {
            let status = try? await harness.statusJSON()
            return door.logStatus.ack == 30 && status?["pending"] as? Int == 0
        }
        // Power cut at the compound before it saved its queue; then both brokers come back.
        try compound.crashAndRestart()
        try central.restart()
        if !receipts {
            door.record(code: 16, point: 2)
            try await waitUntil("the marker (seq 31) at the centre (\(centre.text))", timeout: .seconds(60)) { seqs().contains(31) }
            #expect(seqs().isDisjoint(with: 11...30), "the compound's queue is gone and nothing sends it again")
            await #expect(harness.stop() == 0)
            return
        }
        try await waitUntil("seqs 11-30 at the centre again (\(centre.text))", timeout: .seconds(60)) { seqs().isSuperset(of: 1...30) }
        _ = try await eventually("the centre's receipts confirm everything", timeout: .seconds(30)) { () -> Bool? in
            let status = try await harness.statusJSON()["receipts"] as? [String: Any] ?? [:]
            return status["unconfirmed"] as? Int == 0 && (status["applied"] as? Int ?? 0) >= 1 ? true : nil
        }
        await #expect(harness.stop() == 0)
    }

    /// An issuer at the centre: `accessgw send` through the central broker gets the gateway's reply, and a replay
    /// request's events and reply come back to the centre too (issue 19: replies never did).
    @Test func commandRepliesAndReplayedEventsComeBackToTheCentre() async throws {
        let central = try MosquittoBroker(.init(tls: true, users: Self.centralUsers))
        let compound = try Self.compoundBroker(bridgingTo: central)
        let harness = try GatewayHarness(sharing: compound)
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let door = simulator.devices[0]
        let keys = try await harness.accessgw(["keygen", "pm-kunming", "--dir", harness.directory.path])
        try #require(keys.status == 0, "\(keys.output)")
        let commands = """
        commands:
          enabled: true
          issuers:
            - id: pm-kunming
              public_key_file: \(harness.directory.path)/pm-kunming.pub
              allow:
                - { devices: ["door-*"], commands: [open, replay] }
        """
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML, site: "kunming-guandu")
        let gateway = try String(contentsOfFile: harness.configPath, encoding: .utf8)
        try (gateway + "\n" + commands).write(toFile: harness.configPath, atomically: true, encoding: .utf8)
        // The issuer's own configuration: the gateway's, but for the central broker (TLS, its own user).
        let passwordFile = harness.directory.appendingPathComponent("pm.password").path
        try "pm-secret\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        let issuerConfig = harness.directory.appendingPathComponent("issuer.yaml").path
        try gateway.replacingOccurrences(of: "  port: \(compound.port)\n",
                                         with: "  port: \(central.port)\n  tls: { ca_file: \(central.certificates!.caFile) }\n"
                                             + "  username: pm\n  password_file: \(passwordFile)\n")
            .appending("\n" + commands).write(toFile: issuerConfig, atomically: true, encoding: .utf8)
        try await waitUntil("the bridge connected (\(central.log))") { central.log.contains("bridge-kunming-guandu") }
        let siteTree = try await Subscriber.subscribed(to: "accessgw/#", on: compound)
        try await harness.start()
        for i in 0..<5 { door.record(code: 16, point: Int16(i % 4 + 1)) }
        try await waitUntil("5 events acknowledged by the compound") { door.logStatus.ack == 5 }

        let key = harness.directory.appendingPathComponent("pm-kunming.key").path
        let sent = try await harness.accessgw(["send", "door-3e", "open", "--arg", "door=1", "--issuer", "pm-kunming",
                                         "--key", key, "--ttl", "20s", "--config", issuerConfig])
        #expect(sent.status == 0, "accessgw send through the central broker: \(sent.output)\n\(harness.log)")
        #expect(sent.output.contains(#""status":"written""#), "\(sent.output)")
        // The bridge's up/down notification is not a bare "1" somewhere on the site's tree: every message there is JSON.
        let notJSON = siteTree.messages.filter { (try? JSONSerialization.jsonObject(with: Data($0.payload.utf8))) == nil }
        #expect(notJSON.isEmpty, "\(notJSON)")

        let replies = try await Subscriber.subscribed(to: "accessgw/kunming-guandu/reply/pm-kunming/#", on: central,
                                                      protocolVersion: "mqttv5", username: "pm", password: "pm-secret")
        let topic = "accessgw/kunming-guandu/gateway/gw-test/replay"
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let now = Date()
        let payload = #"{"id":"gap-1","issuer":"pm-kunming","time":"\#(formatter.string(from: now))","ttl_ms":20000,"#
            + #""from":"\#(formatter.string(from: now.addingTimeInterval(-3600)))","types":["door.opened"]}"#
        let signature = try RequestAuthority.signature(topic: topic, payload: Array(payload.utf8),
                                                       key: IssuerKeyFiles.privateKey(at: key))
        let published = try await ChildProcess.run("/usr/bin/mosquitto_pub", central.clientArguments + [
            "-u", "pm", "-P", "pm-secret", "-V", "mqttv5", "-q", "1", "-t", topic, "-m", payload,
            "-D", "publish", "response-topic", "accessgw/kunming-guandu/reply/pm-kunming/gap-1",
            "-D", "publish", "correlation-data", "gap-1", "-D", "publish", "user-property", "signature", signature])
        try #require(published.status == 0, "\(published.output)")
        let done = try await replies.waitFor(count: 6, timeout: .seconds(30))
        let replayed = done.filter { $0.topic.hasPrefix("accessgw/kunming-guandu/reply/pm-kunming/gap-1/door-3e/event/door.opened") }
        #expect(replayed.count == 5, "the 5 door.opened events replayed to the centre: \(done)")
        #expect(done.contains { $0.topic == "accessgw/kunming-guandu/reply/pm-kunming/gap-1" && $0.payload.contains(#""status":"done""#) },
                "the replay's reply at the centre: \(done)")
        await #expect(harness.stop() == 0)
    }
}
