import Foundation
import RequestAuthority
import Simulators
import Testing
import TestSupport

@Suite("end to end: TLS with a test CA and a password file")
struct BrokerSecurityEndToEndTests {
    /// The `mqtt:` lines for the broker's test CA and `gw-test` with the password in a file.
    static func securedMQTT(_ harness: GatewayHarness, password: String) throws -> String {
        let passwordFile = harness.directory.appendingPathComponent("mqtt.pass").path
        try (password + "\n").write(toFile: passwordFile, atomically: true, encoding: .utf8)
        let ca = try #require(harness.broker.certificates).caFile
        return "  tls: { ca_file: \(ca) }\n  username: gw-test\n  password_file: \(passwordFile)"
    }

    @Test func eventsArriveOverTLSWithUsernameAndPasswordFile() async throws {
        let harness = try GatewayHarness(broker: .init(tls: true, users: ["gw-test": "s3cret pass", "reader": "r"]))
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML,
                              mqttExtra: try Self.securedMQTT(harness, password: "s3cret pass"))
        let subscriber = try await Subscriber.subscribed(to: "accessgw/#", on: harness.broker, username: "reader", password: "r")
        try await harness.start()
        simulator.devices[0].record(code: 1, point: 1, direction: 1, value: 934, subject: "P-0012")
        let events = try await subscriber.waitForEvents("the granted event over TLS") { events in
            events.contains { $0.type == "access.granted" }
        }
        #expect(events.first { $0.type == "access.granted" }?.data["person"] as? String == "P-0012")
        #expect(!harness.log.contains("s3cret"), "the password leaked into the log")
        await #expect(harness.stop() == 0)
    }

    @Test func refusedPasswordIsLoggedClearlyAndEventsWaitInTheJournalUntilItIsFixed() async throws {
        let harness = try GatewayHarness(broker: .init(tls: true, users: ["gw-test": "s3cret pass", "reader": "r"]))
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let port = freeLoopbackPort()
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML,
                              mqttExtra: try Self.securedMQTT(harness, password: "wrong"), metricsListen: "127.0.0.1:\(port)")
        try await harness.start()
        let door = simulator.devices[0]
        for i in 0..<3 { door.record(code: 5, point: 1, direction: 1, subject: "CARD-\(i)") }

        let refusal = "broker 127.0.0.1:\(harness.broker.port) refused the connection: not authorized"
        try await waitUntil("the refusal in the log") { harness.log.contains(refusal) }
        let lines = harness.logLines(containing: "refused")
        #expect(lines.first?.contains(" level=error msg=\"\(refusal)\" ") == true, "\(harness.log)")
        #expect(lines.first?.contains(" mqtt.broker=127.0.0.1:\(harness.broker.port)") == true, "\(harness.log)")
        #expect(!harness.log.contains("wrong"), "the password leaked into the log")
        // Every retry is refused again, but the log says ERROR once (then a summary a minute), not once per retry.
        try await waitUntil("3 refused connection attempts") {
            let failures = MetricsEndpointTests.get(Int(port)).split(separator: "\n")
                .first { $0.hasPrefix("accessgw_mqtt_connection_failures_total ") }?.split(separator: " ").last
            return failures.flatMap { Double($0) } ?? 0 >= 3
        }
        #expect(harness.logLines(containing: "level=error").filter { $0.contains(refusal) }.count == 1, "\(harness.log)")

        try await waitUntil("the 3 events journalled and acknowledged to the device") { door.logStatus.ack == 3 }
        #expect(harness.gateway?.isRunning == true, "the gateway keeps running without its broker")
        let journalled = try await harness.journalEvents(["--device", "door-3e", "--type", "access.*"])
        #expect(journalled.compactMap { ($0["data"] as? [String: Any])?["card"] as? String } == ["CARD-0", "CARD-1", "CARD-2"])
        let status = try await eventually("a status snapshot") { () -> [String: Any]? in
            let status = try await harness.statusJSON()
            return (status["status"] as? [String: Any])?["broker"] == nil ? nil : status
        }
        #expect(status["pending"] as? Int ?? 0 >= 3, "\(status)")
        let broker = try #require((status["status"] as? [String: Any])?["broker"] as? [String: Any])
        #expect(broker["connected"] as? Bool == false)
        await #expect(harness.stop() == 0)

        // With the password corrected the journalled events are delivered.
        _ = try Self.securedMQTT(harness, password: "s3cret pass")
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: harness.broker, username: "reader", password: "r")
        try await harness.start()
        let delivered = try await subscriber.waitForEvents("the 3 card events") { $0.filter { $0.type == "access.granted" }.count >= 3 }
        #expect(delivered.filter { $0.type == "access.granted" }.compactMap { $0.data["card"] as? String } == ["CARD-0", "CARD-1", "CARD-2"])
        await #expect(harness.stop() == 0)
    }

    /// Issue 19 item 20: `accessgw send` reaches a TLS broker with its own options, without the gateway's configuration.
    @Test func sendReachesATLSBrokerWithItsOwnOptions() async throws {
        let harness = try GatewayHarness(broker: .init(tls: true, users: ["gw-test": "s3cret pass", "pm": "pm pass"]))
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML,
                              mqttExtra: try Self.securedMQTT(harness, password: "s3cret pass"))
        let key = try Ed25519PrivateKey()
        let publicKeyFile = harness.directory.appendingPathComponent("pm.pub").path, keyFile = harness.directory.appendingPathComponent("pm.key").path
        try key.publicKey.pem().write(toFile: publicKeyFile, atomically: true, encoding: .utf8)
        try key.pem().write(toFile: keyFile, atomically: true, encoding: .utf8)
        try (String(contentsOfFile: harness.configPath, encoding: .utf8) + """

        commands:
          enabled: true
          issuers:
            - { id: pm, public_key_file: \(publicKeyFile), allow: [{ devices: ["door-*"], commands: [open] }] }
        """).write(toFile: harness.configPath, atomically: true, encoding: .utf8)
        let passwordFile = harness.directory.appendingPathComponent("pm.pass").path
        try "pm pass\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        try await harness.start()
        let ca = try #require(harness.broker.certificates).caFile
        let sent = try await harness.accessgw(["send", "door-3e", "open", "--issuer", "pm", "--key", keyFile,
                                         "--broker", "127.0.0.1:\(harness.broker.port)", "--site", "test-site",
                                         "--username", "pm", "--password-file", passwordFile, "--ca-file", ca])
        #expect(sent.status == 0, "\(sent.output)")
        #expect(sent.output.contains(#""status":"written""#), "\(sent.output)")
        await #expect(harness.stop() == 0)
    }
}
