import Foundation
import MQTTPublisher
import Testing
import TestSupport

@Suite(.serialized) struct MQTTPublisherTests {
    @Test(arguments: [MQTTSettings.ProtocolVersion.v5, .v311])
    func publishedEventsReachASubscriberWithTopicAndPayloadIntact(version: MQTTSettings.ProtocolVersion) async throws {
        let broker = try MosquittoBroker()
        let subscriber = try await Subscriber.subscribed(to: "accessgw/test-site/+/event/#", on: broker)
        let publisher = try await Harness.connected(Harness.settings(broker, version))
        let acks = AckCollector(publisher)

        try await Harness.publishInOrder(publisher, 1...10, topic: Harness.eventTopic("door-1"))
        #expect(publisher.publish(topic: Harness.eventTopic("plate-2"), payload: Harness.payload(11), journalSeq: 11))

        let received = try await subscriber.waitFor(count: 11)
        #expect(received.map(\.topic) == Array(repeating: Harness.eventTopic("door-1"), count: 10) + [Harness.eventTopic("plate-2")])
        #expect(received.map(\.payload) == (1...11).map { Harness.payload($0) })
        #expect(received.allSatisfy { !$0.retained })
        try await waitUntil("11 acknowledgements") { acks.count == 11 }
        await publisher.stop()
    }

    /// SPEC section 4: MQTT 5 publications say what they carry, Content Type and the UTF-8 Payload Format Indicator.
    @Test func mqtt5PublicationsCarryContentTypeAndPayloadFormat() async throws {
        let broker = try MosquittoBroker()
        let sub = try ChildProcess("/usr/bin/stdbuf", ["-oL", "/usr/bin/mosquitto_sub"] + broker.clientArguments
                                   + ["-V", "mqttv5", "-q", "1", "-t", "accessgw/#", "-F", "%C|%F|%t", "-d"])
        try await waitUntil("SUBACK") { sub.text.contains("received SUBACK") }
        let publisher = try await Harness.connected(Harness.settings(broker, .v5))
        #expect(publisher.publish(topic: Harness.eventTopic(), payload: Harness.payload(1), journalSeq: 1))
        #expect(publisher.publishState(topic: "accessgw/test-site/door-1/state", payload: #"{"door":"closed","online":true}"#))
        try await waitUntil("the event and the state (\(sub.text))") { sub.text.contains("|1|accessgw/test-site/door-1/state") }
        #expect(sub.text.contains("application/cloudevents+json|1|\(Harness.eventTopic())"))
        #expect(sub.text.contains("application/json|1|accessgw/test-site/gateway/gw-01/status"))
        #expect(sub.text.contains("application/json|1|accessgw/test-site/door-1/state"))
        await publisher.stop()
    }

    @Test func everyPublishIsAcknowledgedExactlyOnceWithItsJournalSeq() async throws {
        let broker = try MosquittoBroker()
        let publisher = try await Harness.connected(Harness.settings(broker, maxInflight: 50))
        let acks = AckCollector(publisher)

        try await Harness.publishInOrder(publisher, 1...2000)
        try await waitUntil("2000 acknowledgements") { acks.count >= 2000 }
        await publisher.stop()
        let all = await acks.finished()
        #expect(all.count == 2000)
        #expect(Set(all) == Set(1...2000))
        #expect(publisher.counters.published == 2000)
        #expect(publisher.counters.acknowledged == 2000)
        #expect(publisher.inflightCount == 0)
    }

    @Test func maxInflightIsRespectedWhileTheBrokerDoesNotAnswer() async throws {
        let broker = try MosquittoBroker()
        let publisher = try await Harness.connected(Harness.settings(broker, maxInflight: 5))
        let acks = AckCollector(publisher)
        #expect(publisher.availableSlots == 5)

        broker.pause()
        var taken: Int64 = 0
        for seq in Int64(1)...8 where publisher.publish(topic: Harness.eventTopic(), payload: Harness.payload(seq), journalSeq: seq) {
            taken = seq
        }
        #expect(taken == 5)
        #expect(publisher.inflightCount == 5)
        #expect(publisher.availableSlots == 0)
        #expect(!publisher.publish(topic: Harness.eventTopic(), payload: Harness.payload(6), journalSeq: 6))

        broker.resume()
        try await waitUntil("the five PUBACKs") { acks.count == 5 }
        #expect(publisher.availableSlots == 5)
        #expect(publisher.publish(topic: Harness.eventTopic(), payload: Harness.payload(6), journalSeq: 6))
        await publisher.stop()
    }

    @Test func publishRefusesWhileDisconnected() async throws {
        let broker = try MosquittoBroker()
        broker.stop()
        let publisher = try MQTTPublisher(settings: Harness.settings(broker), status: Harness.status, logger: Harness.logger)
        try publisher.start()
        #expect(!publisher.publish(topic: Harness.eventTopic(), payload: Harness.payload(1), journalSeq: 1))
        try await waitUntil("a failed connection attempt is counted") { publisher.counters.connectionFailures >= 1 }
        #expect(publisher.counters.lastError?.message == "cannot connect to broker 127.0.0.1:\(broker.port): connection refused")
        #expect(!publisher.isConnected)
        await publisher.stop(timeout: .seconds(1))
    }

    @Test func publishStateIsRetainedForLateSubscribers() async throws {
        let broker = try MosquittoBroker()
        let publisher = try await Harness.connected(Harness.settings(broker))
        #expect(publisher.publishState(topic: "accessgw/test-site/door-1/state", payload: #"{"door":"closed","online":true}"#))
        try await waitUntil("state acknowledged") { publisher.counters.statePublished >= 2 && publisher.inflightCount == 0 }
        await publisher.stop()

        let late = try await Subscriber.subscribed(to: "accessgw/test-site/door-1/state", on: broker)
        let received = try await late.waitFor(count: 1)
        #expect(received == [.init(topic: "accessgw/test-site/door-1/state", payload: #"{"door":"closed","online":true}"#, retained: true)])
    }
}
