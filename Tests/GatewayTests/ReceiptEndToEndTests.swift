import Foundation
import RequestAuthority
import Simulators
import Testing
import TestSupport

/// SPEC 4.3: the gateway's responsibility for an event ends when the centre has stored it, not at the next hop's
/// PUBACK. Each test first reproduces the loss receipts exist for, then shows it does not happen with them.
@Suite("end to end: receipts", .serialized)
struct ReceiptEndToEndTests {
    static let eventTopic = "accessgw/test-site/door-3e/event/#"
    static let receiptTopic = "accessgw/test-site/gateway/gw-test/receipt"

    /// The centre in these tests: a persistent-session subscriber (the queue a compound broker holds for a bridge or
    /// collector) and the receipts it publishes, signed by `issuer`'s key.
    static func receiptsYAML(resendAfter: String) -> String {
        "receipts:\n  enabled: true\n  resend_after: \(resendAfter)"
    }

    static func ids(_ messages: [Subscriber.Message]) -> [String] {
        messages.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.payload.utf8)) as? [String: Any])?["id"] as? String }
    }

    static func places(_ messages: [Subscriber.Message]) -> [Int] {
        messages.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.payload.utf8)) as? [String: Any])?["gwseq"] as? Int }
    }

    static func epoch(_ messages: [Subscriber.Message]) -> String? {
        messages.lazy.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.payload.utf8)) as? [String: Any])?["gwepoch"] as? String }.first
    }

    /// Publishes a receipt as SPEC 4.3 says: MQTT 5, QoS 1, retained, user property `signature` by `key`.
    static func publishReceipt(_ payload: String, key: Ed25519PrivateKey?, broker: MosquittoBroker) async throws {
        var arguments = broker.clientArguments + ["-V", "mqttv5", "-q", "1", "-r", "-t", receiptTopic, "-m", payload]
        if let key {
            let signature = try RequestAuthority.signature(topic: receiptTopic, payload: Array(payload.utf8), key: key)
            arguments += ["-D", "publish", "user-property", "signature", signature]
        }
        let result = try await ChildProcess.run("/usr/bin/mosquitto_pub", arguments)
        precondition(result.status == 0, "mosquitto_pub failed: \(result.output)")
    }

    static func receipt(issuer: String, epoch: String, through: Int, ranges: [[Int]] = []) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let list = ranges.isEmpty ? "" : ",\"ranges\":[" + ranges.map { "[\($0[0]),\($0[1])]" }.joined(separator: ",") + "]"
        return #"{"issuer":"\#(issuer)","time":"\#(formatter.string(from: Date()))","epoch":"\#(epoch)","through":\#(through)\#(list)}"#
    }

    func receiptStatus(_ harness: GatewayHarness) async throws -> [String: Any] {
        try await harness.statusJSON()["receipts"] as? [String: Any] ?? [:]
    }

    /// The loss, then its repair: a broker acknowledged events queued for a persistent-session subscriber and was
    /// killed (no persistence). Without receipts nothing sends them again; with receipts they arrive within
    /// `resend_after` plus a few seconds, with their original ids, and a receipt stops the re-sending.
    @Test(arguments: [false, true])
    func eventsABrokerLostAfterItsPubackArriveAgainOnlyWithReceipts(receipts: Bool) async throws {
        let harness = try GatewayHarness()
        let door = SimulatedDevice(kind: .faceDoor, unit: 1)
        let simulator = try TCPSimulator([door])
        let pm = try await CommandIssuer(id: "pm-central", broker: harness.broker, directory: harness.directory)
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML, mqttExtra: "  protocol: 5")
        try harness.enableRequests(from: pm, devices: #"["*"]"#, commands: "[receipt]",
                                   extra: receipts ? Self.receiptsYAML(resendAfter: "3s") : "")
        // The centre subscribes with a persistent session, then goes away: the broker queues for it.
        let centre = try await Subscriber.subscribed(to: Self.eventTopic, on: harness.broker, sessionID: "centre")
        centre.stop()
        let observer = try await Subscriber.subscribed(to: Self.eventTopic, on: harness.broker)
        try await harness.start()
        for _ in 0..<20 { door.record(code: 16, point: 1) }
        let seen = try await observer.waitFor(count: 20, timeout: .seconds(30))
        let original = Set(Self.ids(seen))
        if receipts { #expect(Self.places(seen).count == seen.count && Self.epoch(seen) != nil, "every event carries gwepoch and gwseq") }
        // Acknowledged by the broker (the observer has them): now the power cut.
        try await eventually("the gateway marks the 20 events published", timeout: .seconds(20)) {
            await (try? harness.statusJSON())?["pending"] as? Int == 0 ? true : nil
        }
        try harness.broker.crashAndRestart()
        let back = try await Subscriber.subscribed(to: Self.eventTopic, on: harness.broker, sessionID: "centre")
        if !receipts {
            // A marker published after the restart arrives; the 20 before it never do (the gateway sends in order).
            door.record(code: 16, point: 2)
            let received = try await back.waitFor(count: 1, timeout: .seconds(30))
            #expect(Set(Self.ids(received)).isDisjoint(with: original), "the killed broker's queue is gone and nothing resends it")
            await #expect(harness.stop() == 0)
            return
        }
        let again = try await eventually("the 20 events again, within resend_after + a few seconds", timeout: .seconds(15)) {
            let ids = Set(Self.ids(back.messages))
            return original.isSubset(of: ids) ? back.messages : nil
        }
        #expect(Set(Self.ids(again)).isSuperset(of: original), "re-sent with their original ids")
        _ = try await eventually("status counts the re-sent events", timeout: .seconds(10)) {
            await (try receiptStatus(harness)["resent"] as? Int ?? 0) >= 20 ? true : nil
        }
        // The centre's receipt for everything: the gateway stops re-sending and counts nothing unconfirmed.
        let epoch = try #require(Self.epoch(seen))
        let top = Self.places(seen).max() ?? 0
        try await Self.publishReceipt(Self.receipt(issuer: "pm-central", epoch: epoch, through: top + 100), key: pm.key, broker: harness.broker)
        let status = try await eventually("the receipt applied and nothing unconfirmed", timeout: .seconds(15)) {
            let status = try await receiptStatus(harness)
            return status["applied"] as? Int == 1 && status["unconfirmed"] as? Int == 0 ? status : nil
        }
        #expect(status["through"] as? Int == top + 100)
        await #expect(harness.stop() == 0)
    }

    /// Forged, unpermitted, other-epoch, stale and malformed receipts confirm nothing and are counted by reason; the
    /// events stay unconfirmed and are re-sent.
    @Test func receiptsThatMustNotCountConfirmNothing() async throws {
        let harness = try GatewayHarness()
        let door = SimulatedDevice(kind: .faceDoor, unit: 1)
        let simulator = try TCPSimulator([door])
        let pm = try await CommandIssuer(id: "pm-central", broker: harness.broker, directory: harness.directory)
        let other = try await CommandIssuer(id: "pm-ops", broker: harness.broker, directory: harness.directory)
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML, mqttExtra: "  protocol: 5")
        try harness.enableRequests(from: pm, devices: #"["*"]"#, commands: "[receipt]", extra: [
            "    - id: pm-ops", "      public_key_file: \(other.publicKeyFile)", "      allow:",
            #"        - { devices: ["*"], commands: [replay] }"#, Self.receiptsYAML(resendAfter: "2s"),
        ].joined(separator: "\n"))
        let observer = try await Subscriber.subscribed(to: Self.eventTopic, on: harness.broker)
        try await harness.start()
        for _ in 0..<5 { door.record(code: 16, point: 1) }
        let seen = try await observer.waitFor(count: 5, timeout: .seconds(30))
        let epoch = try #require(Self.epoch(seen))
        let all = Self.receipt(issuer: "pm-central", epoch: epoch, through: 1000)
        try await Self.publishReceipt(all, key: nil, broker: harness.broker)
        try await Self.publishReceipt(all, key: other.key, broker: harness.broker)
        try await Self.publishReceipt(Self.receipt(issuer: "pm-ops", epoch: epoch, through: 1000), key: other.key, broker: harness.broker)
        try await Self.publishReceipt(Self.receipt(issuer: "pm-central", epoch: "0123456789abcdef", through: 1000), key: pm.key, broker: harness.broker)
        try await Self.publishReceipt(#"{"issuer":"pm-central","through":"all"}"#, key: pm.key, broker: harness.broker)
        try await Self.publishReceipt(Self.receipt(issuer: "pm-central", epoch: epoch, through: 1), key: pm.key, broker: harness.broker)
        try await Self.publishReceipt(Self.receipt(issuer: "pm-central", epoch: epoch, through: 0), key: pm.key, broker: harness.broker)
        let status = try await eventually("six receipts ignored, one applied", timeout: .seconds(15)) {
            let status = try await receiptStatus(harness)
            let ignored = status["ignored"] as? [String: Int] ?? [:]
            return ignored.values.reduce(0, +) == 6 && status["applied"] as? Int == 1 ? status : nil
        }
        #expect(status["ignored"] as? [String: Int] == ["unsigned": 1, "bad_signature": 1, "not_permitted": 1, "other_epoch": 1,
                                                         "stale": 1, "malformed": 1])
        // Only place 1 is confirmed: the others are still unconfirmed and are published again.
        let unconfirmed = try await eventually("the events stay unconfirmed and are re-sent", timeout: .seconds(20)) {
            let status = try await receiptStatus(harness)
            return (status["resent"] as? Int ?? 0) >= 4 ? status : nil
        }
        #expect((unconfirmed["unconfirmed"] as? Int ?? 0) >= 4)
        await #expect(harness.stop() == 0)
    }

    /// A gateway stopped with unconfirmed events sends them again after its restart, and what a receipt confirmed
    /// before the restart stays confirmed.
    @Test func aRestartedGatewayResendsWhatIsUnconfirmedAndRemembersWhatIsConfirmed() async throws {
        let harness = try GatewayHarness()
        let door = SimulatedDevice(kind: .faceDoor, unit: 1)
        let simulator = try TCPSimulator([door])
        let pm = try await CommandIssuer(id: "pm-central", broker: harness.broker, directory: harness.directory)
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML, mqttExtra: "  protocol: 5")
        try harness.enableRequests(from: pm, devices: #"["*"]"#, commands: "[receipt]", extra: Self.receiptsYAML(resendAfter: "2s"))
        let observer = try await Subscriber.subscribed(to: Self.eventTopic, on: harness.broker)
        try await harness.start()
        for _ in 0..<10 { door.record(code: 16, point: 1) }
        let seen = try await observer.waitFor(count: 10, timeout: .seconds(30))
        let epoch = try #require(Self.epoch(seen))
        let places = Self.places(seen).sorted()
        // The centre stored the first five (and gateway.started before them), not the rest.
        try await Self.publishReceipt(Self.receipt(issuer: "pm-central", epoch: epoch, through: places[4]), key: pm.key, broker: harness.broker)
        _ = try await eventually("the receipt applied", timeout: .seconds(15)) { try await receiptStatus(harness)["applied"] as? Int == 1 ? true : nil }
        await #expect(harness.stop() == 0)
        let after = try await Subscriber.subscribed(to: Self.eventTopic, on: harness.broker)
        try await harness.start()
        let resent = try await eventually("the five unconfirmed events again after the restart", timeout: .seconds(60)) {
            let got = Set(Self.places(after.messages))
            return Set(places[5...]).isSubset(of: got) ? got : nil
        }
        #expect(resent.isDisjoint(with: places[..<5]), "what the receipt confirmed before the restart is not sent again")
        await #expect(harness.stop() == 0)
    }

    /// 10,000 events, confirmed by receipts with holes: what the holes hold is re-sent, nothing else, and once the
    /// last receipt covers everything nothing is unconfirmed. The first receipt is applied before the events are
    /// recorded (a receipt may name places not journalled yet), so no event is re-sent before it counts.
    @Test func tenThousandEventsAreConfirmedThroughReceiptsWithHoles() async throws {
        let harness = try GatewayHarness()
        let door = SimulatedDevice(kind: .faceDoor, unit: 1, capacity: 12_000)
        let simulator = try TCPSimulator([door])
        let pm = try await CommandIssuer(id: "pm-central", broker: harness.broker, directory: harness.directory)
        try harness.configure(buses: simulator.busYAML, devices: """
          - { id: door-3e, profile: face-door, bus: lan, unit: 1, poll: 20ms }
        """, mqttExtra: "  protocol: 5")
        try harness.enableRequests(from: pm, devices: #"["*"]"#, commands: "[receipt]", extra: Self.receiptsYAML(resendAfter: "2s"))
        let observer = try await Subscriber.subscribed(to: "accessgw/test-site/+/event/#", on: harness.broker)
        observer.validatesPayloads = false
        try await harness.start()
        let started = try await observer.waitFor(count: 1, timeout: .seconds(30))
        let epoch = try #require(Self.epoch(started))
        // The centre "lost" 3000, 6000-6009 and everything above 10,001 (gateway.started is place 1).
        let ranges = [[3001, 5999], [6010, 10_001]]
        try await Self.publishReceipt(Self.receipt(issuer: "pm-central", epoch: epoch, through: 2999, ranges: ranges),
                                key: pm.key, broker: harness.broker)
        _ = try await eventually("the first receipt applied", timeout: .seconds(15)) {
            try await receiptStatus(harness)["applied"] as? Int == 1 ? true : nil
        }
        func covered(_ place: Int) -> Bool { place <= 2999 || ranges.contains { (($0[0])...($0[1])).contains(place) } }
        for i in 0..<10_000 { door.record(code: 16, point: Int16(i % 4 + 1)) }
        let doorEvents = { observer.messages.filter { $0.topic.hasPrefix("accessgw/test-site/door-3e/") } }
        let places = try await eventually("10,000 door events", timeout: .seconds(180)) { () -> [Int]? in
            let places = Set(Self.places(doorEvents()))
            return places.count >= 10_000 ? places.sorted() : nil
        }
        let holes = Set(places.filter { !covered($0) })
        #expect(holes.count >= 11, "3000, 6000-6009 and what lies above the last range")
        let resent = try await eventually("every hole re-sent", timeout: .seconds(30)) { () -> Set<Int>? in
            var counts: [Int: Int] = [:]
            for place in Self.places(doorEvents()) { counts[place, default: 0] += 1 }
            let again = Set(counts.filter { $0.value >= 2 }.keys)
            return holes.isSubset(of: again) ? again : nil
        }
        #expect(resent.allSatisfy { !covered($0) }, "a confirmed place is never sent again")
        let top = places.last!
        try await Self.publishReceipt(Self.receipt(issuer: "pm-central", epoch: epoch, through: top + 10), key: pm.key, broker: harness.broker)
        _ = try await eventually("nothing unconfirmed", timeout: .seconds(15)) {
            let status = try await receiptStatus(harness)
            return status["applied"] as? Int == 2 && status["unconfirmed"] as? Int == 0 ? true : nil
        }
        await #expect(harness.stop() == 0)
    }

    /// `accessgw forget` fills each erased, already published event's place with `gateway.erased`: the same gwseq,
    /// `data.erases` = the erased id, no personal data; the centre deletes its copy and its sequence has no hole.
    @Test func forgetReplacesEachPublishedEventByGatewayErasedInItsPlace() async throws {
        let harness = try GatewayHarness()
        let door = SimulatedDevice(kind: .faceDoor, unit: 1)
        let simulator = try TCPSimulator([door])
        let pm = try await CommandIssuer(id: "pm-central", broker: harness.broker, directory: harness.directory)
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML, mqttExtra: "  protocol: 5")
        try harness.enableRequests(from: pm, devices: #"["*"]"#, commands: "[receipt]", extra: Self.receiptsYAML(resendAfter: "60s"))
        let observer = try await Subscriber.subscribed(to: "accessgw/test-site/+/event/#", on: harness.broker)
        try await harness.start()
        door.record(code: 1, point: 1, direction: 1, value: 934, subject: "P-0012")
        door.record(code: 1, point: 1, direction: 1, value: 934, subject: "P-0099")
        let granted = try await eventually("two grants", timeout: .seconds(30)) { () -> [[String: Any]]? in
            let grants = observer.messages.filter { $0.topic.hasSuffix("/event/access.granted") }
                .compactMap { try? JSONSerialization.jsonObject(with: Data($0.payload.utf8)) as? [String: Any] }
            return grants.count >= 2 ? grants : nil
        }
        let erased = try #require(granted.first { ($0["data"] as? [String: Any])?["person"] as? String == "P-0012" })
        let (status, output) = try await ChildProcess.run(GatewayHarness.binary, ["forget", "--person", "P-0012", "--config", harness.configPath])
        #expect(status == 0, "\(output)")
        let replacement = try await eventually("gateway.erased", timeout: .seconds(20)) { () -> [String: Any]? in
            observer.messages.first { $0.topic.hasSuffix("/event/gateway.erased") }
                .flatMap { try? JSONSerialization.jsonObject(with: Data($0.payload.utf8)) as? [String: Any] }
        }
        #expect(replacement["gwseq"] as? Int == erased["gwseq"] as? Int, "the same place")
        #expect(replacement["gwepoch"] as? String == erased["gwepoch"] as? String)
        #expect((replacement["data"] as? [String: Any])?["erases"] as? String == erased["id"] as? String)
        let text = observer.messages.first { $0.topic.hasSuffix("/event/gateway.erased") }?.payload ?? ""
        #expect(!text.contains("P-0012"))
        await #expect(harness.stop() == 0)
    }

    /// `Examples/subscriber.py --receipts`, a consumer written from the SPEC alone, confirms what it stored: the
    /// gateway applies its receipts and has nothing unconfirmed.
    @Test func theExampleSubscriberConfirmsWhatItStored() async throws {
        let harness = try GatewayHarness()
        let door = SimulatedDevice(kind: .faceDoor, unit: 1)
        let simulator = try TCPSimulator([door])
        let pm = try await CommandIssuer(id: "pm-central", broker: harness.broker, directory: harness.directory)
        let keyFile = harness.directory.appendingPathComponent("pm-central.key").path
        try pm.key.pem().write(toFile: keyFile, atomically: true, encoding: .utf8)
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML, mqttExtra: "  protocol: 5")
        try harness.enableRequests(from: pm, devices: #"["*"]"#, commands: "[receipt]", extra: Self.receiptsYAML(resendAfter: "60s"))
        let script = GatewayHarness.repository.appendingPathComponent("Examples/subscriber.py").path
        let subscriber = try ChildProcess("/usr/bin/env", [
            "python3", "-u", script, "--port", "\(harness.broker.port)", "--site", "test-site", "--client-id", "centre-1",
            "--issuer", "pm-central", "--key", keyFile, "--state", harness.directory.appendingPathComponent("centre.json").path,
            "--receipts",
        ])
        defer { subscriber.stop(signal: SIGTERM) }
        try await waitUntil("the subscriber subscribed (\(subscriber.text))") { subscriber.text.contains("connected, subscribed") }
        try await harness.start()
        for _ in 0..<5 { door.record(code: 16, point: 1) }
        try await waitUntil("five events stored (\(subscriber.text))", timeout: .seconds(30)) {
            subscriber.text.components(separatedBy: "door.opened").count - 1 >= 5
        }
        let status = try await eventually("its receipts confirm everything (\(subscriber.text))", timeout: .seconds(20)) {
            let status = try await receiptStatus(harness)
            return (status["applied"] as? Int ?? 0) >= 1 && status["unconfirmed"] as? Int == 0 && (status["through"] as? Int ?? 0) >= 6
                ? status : nil
        }
        #expect((status["ignored"] as? [String: Int] ?? [:]).values.allSatisfy { $0 == 0 }, "\(status)")
        await #expect(harness.stop() == 0)
    }
}
