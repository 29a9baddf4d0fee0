import Foundation
import MQTTPublisher
import Testing
import TestSupport

/// Finding 7 of issue 7: a publication the broker refuses (MQTT 5 PUBACK reason >= 0x80, here mosquitto's ACL)
/// is reported with its journal seq and skipped; it never blocks the window or makes the publisher reconnect.
@Suite(.serialized) struct RefusedPublicationTests {
    /// A broker whose ACL lets anonymous clients write events of type access.granted and the gateway status only.
    static func brokerDenyingAllButGranted() throws -> MosquittoBroker {
        let directory = try makeTemporaryDirectory("acl")
        let acl = directory.appendingPathComponent("acl")
        try """
            topic readwrite accessgw/+/+/event/access.granted
            topic readwrite accessgw/+/gateway/#
            """.write(to: acl, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: acl.path)
        return try MosquittoBroker(.init(extraConfig: ["acl_file \(acl.path)"]))
    }

    static let deniedTopic = "accessgw/test-site/door-1/event/access.denied"

    @Test func deniedAllowedDeniedInOneWindowNeverStallsOrReconnects() async throws {
        let broker = try Self.brokerDenyingAllButGranted()
        let subscriber = try await Subscriber.subscribed(to: "accessgw/test-site/+/event/#", on: broker)
        let publisher = try await Harness.connected(Harness.settings(broker, .v5, maxInflight: 20))
        let refusals = RefusalCollector(publisher)
        let acks = AckCollector(publisher)

        let rounds: Int64 = 30
        var seq: Int64 = 0
        let deadline = ContinuousClock.now + .seconds(30)
        for _ in 0..<rounds {
            for topic in [Self.deniedTopic, Harness.eventTopic(), Self.deniedTopic] {
                seq += 1
                while !publisher.publish(topic: topic, payload: Harness.payload(seq), journalSeq: seq) {
                    guard ContinuousClock.now < deadline else { throw PublishTimedOut(seq: seq) }
                    try await Task.sleep(for: .milliseconds(1))
                }
            }
        }
        let allowed = (0..<rounds).map { 3 * $0 + 2 }
        let denied = (1...seq).filter { $0 % 3 != 2 }
        try await waitUntil("every allowed event acknowledged, every denied one refused") {
            acks.count == allowed.count && refusals.count == denied.count
        }
        #expect(acks.all == allowed)
        #expect(refusals.all.map(\.seq) == denied)
        #expect(refusals.all.allSatisfy { $0.reason == 0x87 })
        #expect(try await subscriber.waitFor(count: allowed.count).map(\.payload) == allowed.map { Harness.payload($0) })
        #expect(publisher.counters.rejected == denied.count)
        #expect(publisher.counters.connects == 1)
        #expect(publisher.counters.connectionFailures == 0)
        #expect(publisher.inflightCount == 0)
        #expect(publisher.isConnected)
        await publisher.stop()
    }
}

/// Collects the journal seqs and reason codes of refused publications.
final class RefusalCollector: @unchecked Sendable {
    // @unchecked: `refused` is only touched under `lock`.
    private let lock = NSLock()
    private var refused: [(seq: Int64, reason: Int32)] = []

    init(_ publisher: MQTTPublisher) {
        publisher.setRefusalHandler { [weak self] seq, reason in
            guard let self else { return }
            self.lock.withLock { self.refused.append((seq, reason)) }
        }
    }

    var all: [(seq: Int64, reason: Int32)] { lock.withLock { refused } }
    var count: Int { lock.withLock { refused.count } }
}
