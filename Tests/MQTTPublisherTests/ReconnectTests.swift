import Foundation
import MQTTPublisher
import Testing
import TestSupport

@Suite(.serialized) struct ReconnectTests {
    @Test(arguments: [MQTTSettings.ProtocolVersion.v5, .v311])
    func afterABrokerRestartThePublisherReconnectsAndLosesNothing(version: MQTTSettings.ProtocolVersion) async throws {
        let broker = try MosquittoBroker(.init(persistent: true))
        // A persistent session, so the broker keeps queueing for the subscriber across its own restart.
        let subscriber = try await Subscriber.subscribed(to: "accessgw/test-site/+/event/#", on: broker,
                                                         sessionID: "sub-reconnect-\(version.rawValue)")
        let publisher = try await Harness.connected(Harness.settings(broker, version, maxInflight: 20))
        let acks = AckCollector(publisher)

        try await Harness.publishInOrder(publisher, 1...100)
        broker.stop()                       // some of 1...100 are still waiting for their PUBACK
        try await waitUntil("the publisher notices") { !publisher.isConnected }
        #expect(!publisher.publish(topic: Harness.eventTopic(), payload: Harness.payload(101), journalSeq: 101))
        let ackedWhileUp = acks.count

        try broker.restart()
        try await waitUntil("the publisher reconnects by itself") { publisher.isConnected }
        try await Harness.publishInOrder(publisher, 101...200)
        try await waitUntil("all 200 acknowledged") { Set(acks.all) == Set(1...200) }
        await publisher.stop()
        #expect(await acks.finished().count == 200, "each seq is acknowledged once")

        let received = try await eventually("every event at the subscriber") { () -> [Subscriber.Message]? in
            let messages = subscriber.messages
            return Set(messages.map(\.payload)) == Set((1...200).map { Harness.payload($0) }) ? messages : nil
        }
        // Per-device order: the first copy of each event arrives in journal order; any duplicate is identical.
        var firstSeen: [String] = []
        for message in received where !firstSeen.contains(message.payload) { firstSeen.append(message.payload) }
        #expect(firstSeen == (1...200).map { Harness.payload($0) })
        #expect(received.allSatisfy { $0.topic == Harness.eventTopic() })
        #expect(publisher.counters.connects >= 2)  // a loaded machine may see one more reconnect; nothing may be lost either way
        #expect(publisher.counters.connectionFailures >= 1)
        print("reconnect (\(version.rawValue)): \(ackedWhileUp) of the first 100 acknowledged before the broker stopped; "
              + "\(received.count - 200) duplicates delivered")
    }

    @Test func eventsStayWithTheCallerWhileTheBrokerIsAway() async throws {
        let broker = try MosquittoBroker()
        let publisher = try await Harness.connected(Harness.settings(broker))
        broker.stop()
        try await waitUntil("disconnected") { !publisher.isConnected }
        #expect(publisher.availableSlots == 0)
        #expect(!publisher.publish(topic: Harness.eventTopic(), payload: Harness.payload(1), journalSeq: 1))
        #expect(publisher.counters.lastError?.message.hasPrefix("connection to broker 127.0.0.1:\(broker.port) lost") == true)
        try broker.restart()
        try await waitUntil("reconnected") { publisher.isConnected }
        #expect(publisher.publish(topic: Harness.eventTopic(), payload: Harness.payload(1), journalSeq: 1))
        await publisher.stop()
    }
}

@Suite struct PublishRateMeasurement {
    /// Prints the raw QoS 1 rate to the local broker through the publisher (acknowledged messages per second).
    @Test func measureQoS1PublishRate() async throws {
        let broker = try MosquittoBroker()
        let publisher = try await Harness.connected(Harness.settings(broker, maxInflight: 100))
        let acks = AckCollector(publisher)
        let count: Int64 = 20_000
        let start = ContinuousClock.now
        try await Harness.publishInOrder(publisher, 1...count, timeout: .seconds(120))
        try await waitUntil("all acknowledged", timeout: .seconds(120)) { acks.count == Int(count) }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("MQTT QoS 1 publish rate to local mosquitto: \(Int(Double(count) / seconds)) msgs/s "
              + "(\(count) messages of \(Harness.payload(1).utf8.count) bytes, max_inflight 100, debug build)")
        await publisher.stop()
    }
}
