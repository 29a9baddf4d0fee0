import Foundation
import RequestAuthority
import Simulators
import Testing
import TestSupport

/// `Examples/subscriber.py` (paho-mqtt) against a real gateway and broker: it must survive a broker restart that
/// forgets its session, drop a redelivered event, and fill a gap by asking for a replay.
@Suite("end to end: the example subscriber", .serialized)
struct SubscriberExampleTests {
    struct Line: Decodable {
        var id: String
        var seq: Int?
        var replayed: Bool
    }

    static func lines(_ process: ChildProcess) -> [Line] {
        process.text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Line.self, from: Data($0.utf8)) }
    }

    @Test func itSurvivesABrokerRestartDropsADuplicateAndFillsAGapThroughReplay() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let door = simulator.devices[0]
        let pm = try await CommandIssuer(id: "pm-example", broker: harness.broker, directory: harness.directory)
        let keyFile = harness.directory.appendingPathComponent("pm-example.key").path
        try pm.key.pem().write(toFile: keyFile, atomically: true, encoding: .utf8)
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        try harness.enableRequests(from: pm)
        try await harness.start()
        let state = harness.directory.appendingPathComponent("subscriber-state.json").path
        let script = GatewayHarness.repository.appendingPathComponent("Examples/subscriber.py").path
        func startSubscriber() async throws -> ChildProcess {
            let process = try ChildProcess("/usr/bin/env", ["python3", "-u", script, "--port", "\(harness.broker.port)",
                                                            "--site", "test-site", "--client-id", "pm-example-1",
                                                            "--issuer", "pm-example", "--key", keyFile, "--state", state])
            try await waitUntil("the subscriber subscribed (\(process.text))") { process.text.contains("connected, subscribed") }
            return process
        }
        var subscriber = try await startSubscriber()
        var earlier: [Line] = []
        func delivered() -> [Line] { earlier + Self.lines(subscriber) }
        func seqs() -> [Int] { delivered().compactMap(\.seq) }

        for _ in 0..<3 { door.record(code: 16, point: 1) }
        try await waitUntil("seqs 1-3 (\(subscriber.text))") { seqs() == [1, 2, 3] }

        // 1. The broker restarts without persistence: the subscriber reconnects and subscribes again.
        try harness.broker.restart()
        try await waitUntil("the subscriber back (\(subscriber.text))", timeout: .seconds(30)) {
            subscriber.text.components(separatedBy: "connected, subscribed").count - 1 >= 2
        }
        try await waitUntil("the gateway back (\(harness.log))", timeout: .seconds(30)) {
            harness.log.components(separatedBy: "connected to MQTT broker").count - 1 >= 2
        }
        door.record(code: 16, point: 1)
        door.record(code: 17, point: 1)
        try await waitUntil("seqs 4 and 5 after the restart (\(subscriber.text))", timeout: .seconds(30)) { seqs() == [1, 2, 3, 4, 5] }

        // 2. A redelivery (QoS 1 allows one) carries the same id and is dropped.
        let fifth = try await #require(try harness.journalEvents(["--type", "door.closed"]).last)
        let payload = String(decoding: try JSONSerialization.data(withJSONObject: fifth), as: UTF8.self)
        let published = try await ChildProcess.run("/usr/bin/mosquitto_pub", harness.broker.clientArguments
            + ["-q", "1", "-t", "accessgw/test-site/door-3e/event/door.closed", "-m", payload])
        #expect(published.status == 0)
        try await waitUntil("the duplicate noticed (\(subscriber.text))") { subscriber.text.contains("duplicate dropped: \(fifth["id"]!)") }
        #expect(seqs() == [1, 2, 3, 4, 5])

        // 3. Away while seqs 6-8 are published (its session ends with it): seq 9 shows the gap, a replay fills it.
        subscriber.stop(signal: SIGTERM)
        earlier = Self.lines(subscriber)
        for _ in 0..<3 { door.record(code: 16, point: 1) }
        try await waitUntil("seqs 6-8 acknowledged") { door.logStatus.ack == 8 }
        try await Task.sleep(for: .milliseconds(300))  // published to nobody
        subscriber = try await startSubscriber()
        door.record(code: 17, point: 1)
        do {
            try await waitUntil("the gap filled", timeout: .seconds(30)) { Set(seqs()) == Set(1...9) && subscriber.text.contains("filled") }
        } catch {
            Issue.record("\(error): \(subscriber.text)\n\(harness.log)")
            throw error
        }
        let all = delivered()
        #expect(all.compactMap(\.seq).sorted() == Array(1...9), "each event once: \(subscriber.text)")
        #expect(all.filter(\.replayed).compactMap(\.seq).sorted() == [6, 7, 8])
        #expect(subscriber.text.contains("gap in test-site/door-3e/SIM-FD-0001.1: seq 6..8 missing"))
        try await waitUntil("the replay reply") { subscriber.text.contains(#""status":"done""#) }
        subscriber.stop(signal: SIGTERM)
        await #expect(harness.stop() == 0)
    }
}
