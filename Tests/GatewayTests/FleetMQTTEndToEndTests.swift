import Foundation
import Simulators
import Testing
import TestSupport

/// SPEC section 4: gateways of many compounds share one broker; the retained topics tell the truth after a stop
/// or a reload.
@Suite("end to end: gateways sharing a broker, retained state", .serialized)
struct FleetMQTTEndToEndTests {
    /// Two compounds whose gateways are both `gw-test` with default MQTT settings.
    func twoCompounds(mqttExtra: String = "") throws -> (GatewayHarness, GatewayHarness, TCPSimulator, TCPSimulator) {
        let first = try GatewayHarness()
        let second = try GatewayHarness(sharing: first.broker)
        let (a, b) = (try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)]), try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)]))
        try first.configure(buses: a.busYAML, devices: doorOnLanYAML, mqttExtra: mqttExtra, site: "kunming-guandu")
        try second.configure(buses: b.busYAML, devices: doorOnLanYAML, mqttExtra: mqttExtra, site: "kunming-chenggong")
        return (first, second, a, b)
    }

    @Test func twoCompoundsWithDefaultSettingsBothStayConnected() async throws {
        let (first, second, a, b) = try twoCompounds()
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: first.broker)
        try await first.start()
        try await second.start()
        // Events keep flowing from both for a while: a takeover would show as a reconnect in either log.
        for round in 1...5 {
            a.devices[0].record(code: 16, point: 1)
            b.devices[0].record(code: 16, point: 1)
            _ = try await subscriber.waitForEvents("round \(round) from both sites") { events in
                let seqs = events.filter { $0.seq != nil }
                return Set(seqs.filter { $0.topic.contains("/kunming-guandu/") }.compactMap(\.seq)).count == round
                    && Set(seqs.filter { $0.topic.contains("/kunming-chenggong/") }.compactMap(\.seq)).count == round
            }
            try await Task.sleep(for: .milliseconds(300))
        }
        for harness in [first, second] {
            #expect(harness.log.components(separatedBy: "connected to MQTT broker").count - 1 == 1, "\(harness.log)")
            #expect(!harness.log.contains("closed the connection"))
        }
        #expect(first.log.contains("client_id=accessgw-kunming-guandu-gw-test"))
        #expect(second.log.contains("client_id=accessgw-kunming-chenggong-gw-test"))
        #expect(!first.broker.log.contains("already connected"), "\(first.broker.log)")
        let (firstStatus, secondStatus) = (await first.stop(), await second.stop())
        #expect(firstStatus == 0 && secondStatus == 0)
    }

    @Test func twoGatewaysWithTheSameClientIDNameTheTakeoverOnce() async throws {
        let (first, second, a, b) = try twoCompounds(mqttExtra: "  client_id: accessgw-copied")
        defer { withExtendedLifetime((a, b)) {} }
        try await first.start()
        try await waitUntil("the first gateway connected") { first.log.contains("connected to MQTT broker") }
        try await second.start()
        // mosquitto 2.0.11 closes the old connection without MQTT 5's reason 0x8E, so the gateway infers it.
        let message = "another client connected with client id accessgw-copied (session taken over)"
        try await waitUntil("a takeover named in either log:\n\(first.log)\n---\n\(second.log)", timeout: .seconds(30)) {
            first.log.contains(message) || second.log.contains(message)
        }
        // They keep taking the session from each other; each names it once, not every second.
        try await Task.sleep(for: .seconds(3))
        for harness in [first, second] {
            #expect(harness.log.components(separatedBy: message).count - 1 <= 1, "\(harness.log)")
        }
        let (firstStatus, secondStatus) = (await first.stop(), await second.stop())
        #expect(firstStatus == 0 && secondStatus == 0)
    }

    @Test func aCleanStopLeavesTheDevicesOfflineAndTheGatewayOfflineWithItsVersion() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        let live = try await Subscriber.subscribed(to: "accessgw/test-site/#", on: harness.broker)
        try await harness.start()
        _ = try await eventually("door-3e online in its retained state") {
            live.messages.first { $0.topic == "accessgw/test-site/door-3e/state" && $0.payload.contains(#""online":true"#) }
        }
        let status = try #require(live.messages.first { $0.topic.hasSuffix("/gateway/gw-test/status") })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(status.payload.utf8)) as? [String: Any])
        #expect(object["state"] as? String == "online")
        #expect((object["version"] as? String)?.isEmpty == false)
        #expect(object["started"] is String && object["since"] is String)
        await #expect(harness.stop() == 0)

        let late = try await Subscriber.subscribed(to: "accessgw/test-site/+/state", on: harness.broker)
        let retained = try await late.waitFor(count: 1)
        #expect(retained.count == 1 && retained[0].retained)
        #expect(retained[0].payload.contains(#""door":"closed""#) && retained[0].payload.hasSuffix(#""online":false}"#),
                "\(retained)")
    }

    @Test func aDeviceRemovedByAReloadHasItsRetainedStateCleared() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1), SimulatedDevice(kind: .plateReader, unit: 2)])
        let gate = "  - { id: gate-1, profile: plate-reader, bus: lan, unit: 2, poll: 50ms }"
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML + "\n" + gate)
        let live = try await Subscriber.subscribed(to: "accessgw/test-site/+/state", on: harness.broker)
        try await harness.start()
        _ = try await eventually("both devices online") {
            Set(live.messages.filter { $0.payload.contains(#""online":true"#) }.map(\.topic)).count == 2 ? true : nil
        }
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        let process = try #require(harness.gateway)
        kill(process.process.processIdentifier, SIGHUP)
        _ = try await eventually("gate-1's retained state cleared (log: \(harness.log))") {
            live.messages.first { $0.topic == "accessgw/test-site/gate-1/state" && $0.payload.isEmpty }
        }
        let late = try await Subscriber.subscribed(to: "accessgw/test-site/+/state", on: harness.broker)
        let retained = try await late.waitFor(count: 1)
        try await Task.sleep(for: .milliseconds(300))  // a second retained message would have arrived with the first
        #expect(late.messages.map(\.topic) == ["accessgw/test-site/door-3e/state"], "\(late.messages)")
        #expect(retained[0].payload.contains(#""online":true"#))
        await #expect(harness.stop() == 0)
    }
}
