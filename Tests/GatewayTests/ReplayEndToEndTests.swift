import Foundation
import RequestAuthority
import Simulators
import Synchronization
import Testing
import TestSupport

/// SPEC 4.2: a subscriber asks the gateway for history it missed; the journal's events come again with their
/// original ids and payloads, behind live traffic.
@Suite("end to end: replay", .serialized)
struct ReplayEndToEndTests {
    final class Running: Sendable {
        let flag = Mutex(true)
        var isOn: Bool { flag.withLock { $0 } }
        func stop() { flag.withLock { $0 = false } }
    }

    /// Records one live event every 20 ms on `device` until `running` stops; returns how many.
    static func liveTraffic(_ device: SimulatedDevice, _ running: Running) -> Task<Int, Error> {
        Task {
            var recorded = 0
            while running.isOn {
                device.record(code: 16, point: 2)
                recorded += 1
                try await Task.sleep(for: .milliseconds(20))
            }
            return recorded
        }
    }

    @Test func tenThousandEventsReplayWithTheirOriginalIDsWhileLiveEventsFlow() async throws {
        let harness = try GatewayHarness()
        let history = SimulatedDevice(kind: .faceDoor, unit: 1, capacity: 12_000)
        let live = SimulatedDevice(kind: .faceDoor, unit: 2)
        let simulator = try TCPSimulator([history, live])
        for i in 0..<10_000 { history.record(code: 16, point: Int16(i % 4 + 1)) }
        let pm = try await CommandIssuer(id: "pm-replay", broker: harness.broker, directory: harness.directory)
        try harness.configure(buses: simulator.busYAML, devices: """
          - { id: door-3e, profile: face-door, bus: lan, unit: 1, poll: 20ms }
          - { id: door-live, profile: face-door, bus: lan, unit: 2, poll: 20ms }
        """)
        try harness.enableRequests(from: pm, extra: "replay:\n  max_rate: 2000/s")
        let original = try await Subscriber.subscribed(to: "accessgw/test-site/door-3e/event/door.opened", on: harness.broker)
        let liveArrivals = try ChildProcess("/usr/bin/stdbuf", ["-oL", "/usr/bin/mosquitto_sub"] + harness.broker.clientArguments
            + ["-V", "mqttv5", "-q", "1", "-t", "accessgw/test-site/door-live/event/door.opened"])
        let replayed = try await Subscriber.subscribed(to: "accessgw/test-site/reply/pm-replay/replay-1/+/event/#", on: harness.broker,
                                                       protocolVersion: "mqttv5")
        try await harness.start()
        _ = try await original.waitFor(count: 10_000, timeout: .seconds(120))
        let originalIDs = Set(original.messages.compactMap {
            ((try? JSONSerialization.jsonObject(with: Data($0.payload.utf8))) as? [String: Any])?["id"] as? String
        })
        #expect(originalIDs.count == 10_000)

        // Live traffic throughout the replay; how it fares against the same traffic without a replay is measured by
        // `accessgw bench --replay` (Benchmarks/README.md): timing bounds flake on a loaded 2-core box.
        let liveRun = Running()
        let liveTask = Self.liveTraffic(live, liveRun)
        let request = ReplayRequestEndToEndTests.request(id: "replay-1", issuer: "pm-replay",
                                                         extra: #","devices":["door-3e"],"types":["door.*"]"#)
        let started = ContinuousClock.now
        try await pm.send(topic: "accessgw/test-site/gateway/gw-test/replay", payload: request, correlation: "replay-1")
        let reply = try await pm.reply("replay-1", timeout: .seconds(120))
        let took = ContinuousClock.now - started
        liveRun.stop()
        let liveCount = try await liveTask.value
        let liveIDs = try await eventually("every live event recorded during the replay arrived", timeout: .seconds(30)) { () -> [String]? in
            let ids = liveArrivals.text.split(separator: "\n").compactMap {
                ((try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any])?["id"] as? String
            }
            return ids.count >= liveCount ? ids : nil
        }
        #expect(liveCount > 0 && Set(liveIDs).count == liveCount, "\(liveIDs.count) live events for \(liveCount) recorded")
        // replay.max_rate 2000/s: 10,000 events take 5 s at least (a lower bound, which load cannot break).
        #expect(took >= .milliseconds(4900), "10,000 events at most 2000/s took \(took)")

        #expect(reply.status == "done", "\(reply.object)")
        #expect(reply.object["count"] as? Int == 10_000)
        #expect(reply.object["oldest_available"] is String)
        let replyJSON = try JSONSerialization.data(withJSONObject: reply.object)
        PayloadValidator.shared.expectValid(topic: reply.topic, payload: String(decoding: replyJSON, as: UTF8.self), schema: "replay/reply")
        let received = try await replayed.waitFor(count: 10_000, timeout: .seconds(60))
        let replayedIDs = received.compactMap {
            ((try? JSONSerialization.jsonObject(with: Data($0.payload.utf8))) as? [String: Any])?["id"] as? String
        }
        #expect(Set(replayedIDs) == originalIDs, "replayed events keep their original ids")
        #expect(replayedIDs.count == 10_000, "each once")
        #expect(received.allSatisfy { $0.topic.hasPrefix("accessgw/test-site/reply/pm-replay/replay-1/door-3e/event/door.opened") })
        // The payloads are the journal's, byte for byte.
        let originals = Set(original.messages.map(\.payload))
        #expect(received.allSatisfy { originals.contains($0.payload) })
        await #expect(harness.stop() == 0)
    }

    @Test func aRequestWithoutTheReplayPermissionOrSignatureIsRejected() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let pm = try await CommandIssuer(id: "pm-open-only", broker: harness.broker, directory: harness.directory)
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        try harness.enableRequests(from: pm, commands: "[open]")
        try await harness.start()
        let request = ReplayRequestEndToEndTests.request(id: "replay-2", issuer: "pm-open-only")
        // Unauthenticated: no reply at all (SPEC 4.1); the permitted-but-not-allowed one after it is answered.
        try await pm.send(topic: "accessgw/test-site/gateway/gw-test/replay", payload: request, correlation: "unsigned", signed: false)
        try await pm.send(topic: "accessgw/test-site/gateway/gw-test/replay", payload: request, correlation: "no-permission")
        let refused = try await pm.reply("no-permission")
        #expect(refused.status == "rejected" && refused.reason == "not_permitted", "\(refused.object)")
        #expect(!pm.received.contains { $0.correlation == "unsigned" })
        #expect(harness.log.contains("no reply to accessgw/test-site/reply/pm-open-only/unsigned: unauthenticated"), "\(harness.log)")
        await #expect(harness.stop() == 0)
    }
}
