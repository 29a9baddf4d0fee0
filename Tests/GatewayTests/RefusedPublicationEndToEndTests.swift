import Foundation
import Simulators
import Testing
import TestSupport

/// Finding 7 of issue 7: with a mosquitto ACL denying one event type (MQTT 5 PUBACK 0x87), the denied events are
/// counted, journalled as refused and skipped; the allowed ones around them keep flowing, with no reconnect.
@Suite("end to end: a broker-refused publication never blocks the queue")
struct RefusedPublicationEndToEndTests {
    @Test func deniedAllowedDeniedRepeatedlyThenRestart() async throws {
        let acl = try makeTemporaryDirectory("acl").appendingPathComponent("acl")
        // Anonymous clients may read and write everything but access.denied events.
        try "topic readwrite accessgw/#\ntopic deny accessgw/+/+/event/access.denied\n"
            .write(to: acl, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: acl.deletingLastPathComponent().path)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: acl.path)
        let harness = try GatewayHarness(broker: .init(extraConfig: ["acl_file \(acl.path)"]))
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML, mqttExtra: "  protocol: 5\n  max_inflight: 8")
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: harness.broker)
        try await harness.start()
        let door = simulator.devices[0]
        let rounds = 25
        for round in 0..<rounds {
            // Denied, allowed, denied, recorded together so that they share one in-flight window.
            door.record(code: 2, point: 1, direction: 1, value: 100)
            door.record(code: 1, point: 1, direction: 1, value: 900, subject: "P-\(round)")
            door.record(code: 2, point: 1, direction: 1, value: 100)
        }
        let granted = try await subscriber.waitForEvents("every granted event") {
            $0.filter { $0.type == "access.granted" }.count >= rounds
        }
        #expect(granted.filter { $0.type == "access.granted" }.compactMap { $0.data["person"] as? String } == (0..<rounds).map { "P-\($0)" })
        #expect(!granted.contains { $0.type == "access.denied" })

        var last: [String: Any] = [:]
        defer { if last["refused"] as? Int != 2 * rounds { Issue.record("status: \(last["refused"] ?? "-") refused, \(last["pending"] ?? "-") pending\n\(harness.log)") } }
        let status = try await eventually("the refusals journalled") { () -> [String: Any]? in
            let status = try await harness.statusJSON()
            last = status
            return status["refused"] as? Int == 2 * rounds && status["pending"] as? Int == 0 ? status : nil
        }
        #expect(status["refused"] as? Int == 2 * rounds)
        let human = try await harness.accessgw(["status", "--journal", harness.journalPath])
        #expect(human.output.contains("\(2 * rounds) REFUSED by the broker"), "\(human.output)")
        let tail = try await harness.accessgw(["tail", "--journal", harness.journalPath, "--type", "access.denied", "-n", "3"])
        #expect(tail.output.split(separator: "\n").count == 3)
        #expect(tail.output.split(separator: "\n").allSatisfy { $0.hasSuffix("REFUSED BY BROKER (reason 0x87)") }, "\(tail.output)")
        #expect(harness.log.components(separatedBy: "connected to MQTT broker").count == 2, "one connection only:\n\(harness.log)")
        #expect(harness.log.contains("rejected a publication: not authorized"))
        await #expect(harness.stop() == 0)

        // A restart does not put the refused events back into the queue: the journal has them as done (only the
        // retry of refused events sends them again, apart from the queue, and the broker refusing them again is
        // counted, not logged per event).
        func accessEvents() -> Int { subscriber.events.filter { $0.type.hasPrefix("access.") }.count }
        let before = accessEvents()
        try await harness.start()
        door.record(code: 1, point: 1, direction: 1, value: 900, subject: "after-restart")
        _ = try await subscriber.waitForEvents("the event after the restart") { $0.contains { $0.data["person"] as? String == "after-restart" } }
        #expect(accessEvents() == before + 1)
        #expect(!harness.log.contains("rejected a publication"), "refused events were sent again:\n\(harness.log)")
        await #expect(harness.stop() == 0)
    }

    /// Issue 19 item 12: refused events are retried with backoff and counted, so they go out once the ACL is fixed;
    /// many refusals in a row at the default window keep one connection.
    @Test func refusedEventsGoOutOnceTheACLIsFixedOverOneConnection() async throws {
        let acl = try makeTemporaryDirectory("acl").appendingPathComponent("acl")
        try "topic readwrite accessgw/#\ntopic deny accessgw/+/+/event/access.denied\n".write(to: acl, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: acl.deletingLastPathComponent().path)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: acl.path)
        let harness = try GatewayHarness(broker: .init(extraConfig: ["acl_file \(acl.path)"]))
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1, capacity: 2000)])
        let port = freeLoopbackPort()
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML, mqttExtra: "  protocol: 5", metricsListen: "127.0.0.1:\(port)")
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: harness.broker)
        try await harness.start()
        let door = simulator.devices[0]
        let rounds = 60
        for round in 0..<rounds {
            door.record(code: 2, point: 1, direction: 1, value: 100)
            door.record(code: 2, point: 1, direction: 1, value: 100)
            door.record(code: 1, point: 1, direction: 1, value: 900, subject: "P-\(round)")
        }
        _ = try await subscriber.waitForEvents("every granted event", timeout: .seconds(60)) {
            $0.filter { $0.type == "access.granted" }.count >= rounds
        }
        _ = try await eventually("the refusals journalled") { () -> Bool? in
            try await harness.statusJSON()["refused"] as? Int == 2 * rounds ? true : nil
        }
        #expect(subscriber.events.filter { $0.type == "access.granted" }.count == rounds, "each allowed event once")

        // The ACL is fixed: the refused events go out, each once, and are no longer refused.
        try "topic readwrite accessgw/#\n".write(to: acl, atomically: true, encoding: .utf8)
        harness.broker.reloadConfiguration()
        let denied = try await subscriber.waitForEvents("the refused events after the fix", timeout: .seconds(60)) {
            $0.filter { $0.type == "access.denied" }.count >= 2 * rounds
        }
        #expect(Set(denied.filter { $0.type == "access.denied" }.map(\.id)).count == 2 * rounds)
        _ = try await eventually("no event refused any more") { () -> Bool? in
            try await harness.statusJSON()["refused"] as? Int == 0 ? true : nil
        }
        let delivered = MetricsEndpointTests.get(Int(port)).split(separator: "\n")
            .first { $0.hasPrefix(#"accessgw_mqtt_refused_retries_total{result="delivered"}"#) }?.split(separator: " ").last
        #expect(delivered.flatMap { Double($0) } == Double(2 * rounds))
        #expect(harness.log.components(separatedBy: "connected to MQTT broker").count == 2, "one connection only:\n\(harness.log)")
        #expect(!harness.log.contains("taken over"), "\(harness.log)")
        // 120 refusals: one ERROR, then summaries (rate-limited per broker), not a line per event from the network thread.
        #expect(harness.logLines(containing: "rejected a publication").count <= 2, "\(harness.logLines(containing: "rejected a publication").count) lines")
        await #expect(harness.stop() == 0)
    }
}
