import Foundation
import RequestAuthority
import Simulators
import Testing
import TestSupport

/// Issue 19 items 5, 6, 7, 10 and 13: a replay request is fresh, remembered, bounded, answered only under its
/// issuer's reply tree, filtered by the privacy settings in force and aware of devices a reload added.
@Suite("end to end: replay requests are fresh, bounded and aimed only at their issuer", .serialized)
struct ReplayRequestEndToEndTests {
    static let replayTopic = "accessgw/test-site/gateway/gw-test/replay"

    /// A replay request as SPEC 4.2 shows it; `extra` is appended inside the object (`,"to":…`).
    static func request(id: String, issuer: String, time: Date = Date(), ttlMillis: Int = 60_000,
                        from: Date = Date().addingTimeInterval(-3600), extra: String = "") -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return #"{"id":"\#(id)","issuer":"\#(issuer)","time":"\#(formatter.string(from: time))","ttl_ms":\#(ttlMillis),"#
            + #""from":"\#(formatter.string(from: from))"\#(extra)}"#
    }

    /// The value of the series `name` (labels included) on the gateway's /metrics, 0 when absent.
    static func metric(_ name: String, port: UInt16) async throws -> Double {
        let text = try await SystemdIntegrationTests.get("http://127.0.0.1:\(port)/metrics").body
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "") ?? 0
        }
        return 0
    }

    @Test func aRequestSentAgainIsNotServedAgainAndNeverReachesPastItsTime() async throws {
        let harness = try GatewayHarness()
        let door = SimulatedDevice(kind: .faceDoor, unit: 1)
        let simulator = try TCPSimulator([door])
        let pm = try await CommandIssuer(id: "pm-replay", broker: harness.broker, directory: harness.directory)
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        try harness.enableRequests(from: pm)
        let live = try await Subscriber.subscribed(to: "accessgw/test-site/+/event/door.opened", on: harness.broker)
        let stolen = try await Subscriber.subscribed(to: "\(pm.replyTopic)/stolen/+/event/#", on: harness.broker, protocolVersion: "mqttv5")
        try await harness.start()
        for _ in 0..<3 { door.record(code: 16, point: 1) }
        _ = try await live.waitFor(count: 3, timeout: .seconds(30))
        let time = Date()
        let request = Self.request(id: "fresh-1", issuer: "pm-replay", time: time, extra: #","types":["door.*"]"#)
        try await pm.send(topic: Self.replayTopic, payload: request, correlation: "first")
        let first = try await pm.reply("first", timeout: .seconds(60))
        #expect(first.status == "done" && first.object["count"] as? Int == 3, "\(first.object)")

        // Newer history, then the same bytes and signature again with another Response Topic: not served again.
        for _ in 0..<2 { door.record(code: 16, point: 1) }
        _ = try await live.waitFor(count: 5, timeout: .seconds(30))
        try await pm.send(topic: Self.replayTopic, payload: request, correlation: "stolen")
        let again = try await pm.reply("stolen", timeout: .seconds(60))
        #expect(again.status == "rejected" && again.reason == "id_reused", "\(again.object)")

        // A new request made at the first one's time and asking up to 2099: history up to its time only.
        let capped = Self.request(id: "fresh-2", issuer: "pm-replay", time: time, extra: #","to":"2099-01-01T00:00:00Z","types":["door.*"]"#)
        try await pm.send(topic: Self.replayTopic, payload: capped, correlation: "capped")
        let cappedReply = try await pm.reply("capped", timeout: .seconds(60))
        #expect(cappedReply.status == "done" && cappedReply.object["count"] as? Int == 3, "\(cappedReply.object)")

        // Past its deadline: expired, nothing sent.
        let stale = Self.request(id: "stale", issuer: "pm-replay", time: Date().addingTimeInterval(-120), ttlMillis: 10_000)
        try await pm.send(topic: Self.replayTopic, payload: stale, correlation: "stale")
        let staleReply = try await pm.reply("stale")
        #expect(staleReply.status == "expired", "\(staleReply.object)")
        // Without `time`: malformed, found before authentication, so not answered.
        try await pm.send(topic: Self.replayTopic, payload: #"{"id":"timeless","issuer":"pm-replay","from":"2026-01-01T00:00:00Z"}"#,
                    correlation: "timeless")
        try await waitUntil("the timeless request refused (log: \(harness.log))") {
            harness.log.contains("replay request timeless malformed; no reply")
        }
        #expect(!pm.received.contains { $0.correlation == "timeless" })
        #expect(stolen.messages.isEmpty, "\(stolen.messages.count) events replayed to the second topic")
        await #expect(harness.stop() == 0)
    }

    @Test func repliesAndReplayedEventsGoOnlyUnderTheAuthenticatedIssuersReplyTree() async throws {
        let harness = try GatewayHarness()
        let door = SimulatedDevice(kind: .faceDoor, unit: 1, lockReleaseMilliseconds: 600_000)
        let simulator = try TCPSimulator([door])
        let pm = try await CommandIssuer(id: "pm-replay", broker: harness.broker, directory: harness.directory)
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        try harness.enableRequests(from: pm, commands: "[open, replay]")
        let siteTree = try await Subscriber.subscribed(to: "accessgw/test-site/#", on: harness.broker, protocolVersion: "mqttv5")
        try await harness.start()
        for _ in 0..<2 { door.record(code: 16, point: 1) }
        _ = try await siteTree.waitForEvents("the door's events") { $0.filter { $0.type == "door.opened" }.count >= 2 }
        let open = "accessgw/test-site/door-3e/command/open"

        // A stranger aims a reply at the gateway's status topic, the issuer's own requests at an alarm topic and at
        // the site's tree (replayed events would land on {site}/door-3e/event/…), a stranger's replay at a state topic.
        try await pm.send(topic: open, payload: CommandIssuer.payload(id: "stranger-1", issuer: "pm-replay"), correlation: "c1",
                    signed: false, responseTopic: "accessgw/test-site/gateway/gw-test/status")
        try await pm.send(topic: open, payload: CommandIssuer.payload(id: "aimed-1", issuer: "pm-replay"), correlation: "c2",
                    responseTopic: "accessgw/test-site/door-3e/event/alarm.forced")
        try await pm.send(topic: Self.replayTopic, payload: Self.request(id: "aimed-replay", issuer: "pm-replay"), correlation: "c3",
                    responseTopic: "accessgw/test-site")
        try await pm.send(topic: Self.replayTopic, payload: Self.request(id: "stranger-replay", issuer: "pm-replay"), correlation: "c4",
                    signed: false, responseTopic: "accessgw/test-site/door-3e/state")
        // Genuine requests after them are answered (each kind is decided in order on its own queue).
        try await pm.send(topic: open, payload: CommandIssuer.payload(id: "genuine", issuer: "pm-replay"), correlation: "genuine")
        #expect(try await pm.reply("genuine").status == "written")
        try await pm.send(topic: Self.replayTopic, payload: Self.request(id: "genuine-replay", issuer: "pm-replay", extra: #","types":["door.*"]"#),
                    correlation: "genuine-replay")
        let genuine = try await pm.reply("genuine-replay", timeout: .seconds(60))
        #expect(genuine.status == "done" && genuine.object["count"] as? Int == 2, "\(genuine.object)")

        // Both withheld replies are audited, saying so.
        let audited = try await siteTree.waitForEvents("the audit events") { events in
            events.contains { $0.type == "command.rejected" && $0.data["command_id"] as? String == "stranger-1" }
                && events.contains { $0.type == "command.written" && $0.data["command_id"] as? String == "aimed-1" }
        }
        #expect(audited.first { $0.data["command_id"] as? String == "stranger-1" }?.data["reply_withheld"] as? String == "unauthenticated")
        #expect(audited.first { $0.data["command_id"] as? String == "aimed-1" }?.data["reply_withheld"] as? String == "outside_reply_tree")
        // A reply is a JSON object with a top-level `status`; no event, state or gateway status has one.
        let misplaced = siteTree.messages.filter { message in
            !message.topic.hasPrefix(pm.replyTopic + "/")
                && ((try? JSONSerialization.jsonObject(with: Data(message.payload.utf8))) as? [String: Any])?["status"] != nil
        }
        #expect(misplaced.isEmpty, "\(misplaced.map { "\($0.topic) \($0.payload)" })")
        #expect(siteTree.events.filter { $0.type == "door.opened" && !$0.topic.contains("/reply/") }.count == 2,
                "replayed events landed on the site's own event topics")
        #expect(!pm.received.contains { ["c1", "c2", "c3", "c4"].contains($0.correlation) })
        await #expect(harness.stop() == 0)
    }

    @Test func requestsOverSixteenKiBOrBeyondFourWaitingAreCountedAndDropped() async throws {
        let harness = try GatewayHarness()
        let door = SimulatedDevice(kind: .faceDoor, unit: 1, capacity: 1000)
        let simulator = try TCPSimulator([door])
        let pm = try await CommandIssuer(id: "pm-replay", broker: harness.broker, directory: harness.directory)
        let port = freeLoopbackPort()
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML, metricsListen: "127.0.0.1:\(port)")
        try harness.enableRequests(from: pm, extra: "replay:\n  max_rate: 20/s")
        let live = try await Subscriber.subscribed(to: "accessgw/test-site/+/event/door.opened", on: harness.broker)
        let slowEvents = try await Subscriber.subscribed(to: "\(pm.replyTopic)/slow/+/event/#", on: harness.broker, protocolVersion: "mqttv5")
        try await harness.start()
        for _ in 0..<100 { door.record(code: 16, point: 1) }
        _ = try await live.waitFor(count: 100, timeout: .seconds(60))

        // 1 MiB: over the Maximum Packet Size the gateway declared in CONNECT, so the broker never sends it; then
        // three of 20 KiB, which arrive and are refused before they are queued.
        for (name, size) in [("huge", 1 << 20), ("big-1", 20 << 10), ("big-2", 20 << 10), ("big-3", 20 << 10)] {
            let file = harness.directory.appendingPathComponent("\(name).json").path
            try (#"{"id":"\#(name)","pad":""# + String(repeating: "x", count: size) + #""}"#).write(toFile: file, atomically: true, encoding: .utf8)
            let published = try await ChildProcess.run("/usr/bin/mosquitto_pub", harness.broker.clientArguments + [
                "-V", "mqttv5", "-q", "1", "-t", Self.replayTopic, "-f", file, "-D", "publish", "response-topic", "\(pm.replyTopic)/\(name)",
            ])
            #expect(published.status == 0, "\(published.output)")
        }
        let tooLarge = #"accessgw_replay_requests_dropped_total{reason="too_large"}"#
        try await waitUntil("the 20 KiB requests refused") { try await Self.metric(tooLarge, port: port) >= 3 }

        // A replay of 100 events at 20/s runs for 5 s; 8 requests meanwhile: 4 wait and are answered, 4 are dropped.
        try await pm.send(topic: Self.replayTopic, payload: Self.request(id: "slow", issuer: "pm-replay", extra: #","types":["door.*"]"#),
                    correlation: "slow")
        _ = try await slowEvents.waitFor(count: 1, timeout: .seconds(30))
        for n in 0..<8 {
            try await pm.send(topic: Self.replayTopic, payload: Self.request(id: "quick-\(n)", issuer: "pm-replay", extra: #","types":["nothing.*"]"#),
                        correlation: "quick-\(n)")
        }
        let slow = try await pm.reply("slow", timeout: .seconds(60))
        #expect(slow.status == "done" && slow.object["count"] as? Int == 100, "\(slow.object)")
        let backlog = #"accessgw_replay_requests_dropped_total{reason="backlog"}"#
        try await waitUntil("4 requests dropped") { try await Self.metric(backlog, port: port) >= 4 }
        let answered = try await eventually("the 4 waiting requests answered") { () -> [CommandIssuer.Reply]? in
            let quick = pm.received.filter { $0.correlation.hasPrefix("quick-") }
            return quick.count >= 4 ? quick : nil
        }
        #expect(answered.count == 4 && answered.allSatisfy { $0.status == "done" }, "\(answered.map(\.object))")
        #expect(try await Self.metric(backlog, port: port) == 4)
        #expect(try await Self.metric(tooLarge, port: port) == 3, "the 1 MiB request reached the gateway")
        await #expect(harness.stop() == 0)
    }

    @Test func replayPseudonymisesEventsJournalledBeforePrivacyWasOn() async throws {
        let harness = try GatewayHarness()
        let door = SimulatedDevice(kind: .faceDoor, unit: 1)
        let simulator = try TCPSimulator([door])
        let pm = try await CommandIssuer(id: "pm-replay", broker: harness.broker, directory: harness.directory)
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        try harness.enableRequests(from: pm)
        let live = try await Subscriber.subscribed(to: "accessgw/test-site/+/event/access.granted", on: harness.broker)
        try await harness.start()
        door.record(code: 1, point: 1, direction: 1, value: 900, subject: "P-0012")
        #expect(try await live.waitFor(count: 1, timeout: .seconds(30))[0].payload.contains("P-0012"))
        await #expect(harness.stop() == 0)

        // Pseudonymisation turned on: the event journalled in the clear is replayed pseudonymised.
        let key = harness.directory.appendingPathComponent("privacy.key").path
        try "site-secret".write(toFile: key, atomically: true, encoding: .utf8)
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML,
                              gatewayExtra: "  privacy: { person_ids: pseudonymise, key_file: \(key) }")
        try harness.enableRequests(from: pm)
        let replayed = try await Subscriber.subscribed(to: "\(pm.replyTopic)/private/+/event/#", on: harness.broker, protocolVersion: "mqttv5")
        try await harness.start()
        try await pm.send(topic: Self.replayTopic, payload: Self.request(id: "private", issuer: "pm-replay", extra: #","types":["access.*"]"#),
                    correlation: "private")
        let reply = try await pm.reply("private", timeout: .seconds(60))
        #expect(reply.status == "done" && reply.object["count"] as? Int == 1, "\(reply.object)")
        let event = try await replayed.waitFor(count: 1, timeout: .seconds(30))[0]
        #expect(!event.payload.contains("P-0012"), "\(event.payload)")
        let data = ((try? JSONSerialization.jsonObject(with: Data(event.payload.utf8))) as? [String: Any])?["data"] as? [String: Any]
        #expect((data?["person"] as? String)?.hasPrefix("k1:") == true, "\(event.payload)")
        await #expect(harness.stop() == 0)
    }

    @Test func replayIncludesADeviceAddedByAReload() async throws {
        let harness = try GatewayHarness()
        let door = SimulatedDevice(kind: .faceDoor, unit: 1)
        let added = SimulatedDevice(kind: .faceDoor, unit: 2)
        let simulator = try TCPSimulator([door, added])
        let pm = try await CommandIssuer(id: "pm-replay", broker: harness.broker, directory: harness.directory)
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        try harness.enableRequests(from: pm)
        let live = try await Subscriber.subscribed(to: "accessgw/test-site/+/event/door.opened", on: harness.broker)
        try await harness.start()
        door.record(code: 16, point: 1)
        _ = try await live.waitFor(count: 1, timeout: .seconds(30))

        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML + "\n  - { id: door-new, profile: face-door, bus: lan, unit: 2, poll: 50ms }")
        try harness.enableRequests(from: pm)
        kill(try #require(harness.gateway).process.processIdentifier, SIGHUP)
        try await waitUntil("the reload (log: \(harness.log))", timeout: .seconds(30)) { harness.log.contains("reloaded:") }
        for _ in 0..<3 { added.record(code: 16, point: 1) }
        _ = try await live.waitFor(count: 4, timeout: .seconds(30))

        try await pm.send(topic: Self.replayTopic, payload: Self.request(id: "after-reload", issuer: "pm-replay",
                                                                    extra: #","devices":["door-*"],"types":["door.*"]"#),
                    correlation: "after-reload")
        let reply = try await pm.reply("after-reload", timeout: .seconds(60))
        #expect(reply.status == "done" && reply.object["count"] as? Int == 4, "\(reply.object)")
        await #expect(harness.stop() == 0)
    }
}
