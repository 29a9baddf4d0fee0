import AccessModel
import Foundation
import MQTTPublisher
import Testing
import TestSupport

@Suite(.serialized) struct GatewayStatusTests {
    let statusTopic = "accessgw/test-site/gateway/gw-01/status"

    @Test func lateSubscriberSeesTheRetainedOnlineStatus() async throws {
        let broker = try MosquittoBroker()
        let publisher = try await Harness.connected(Harness.settings(broker))
        try await waitUntil("status acknowledged") { publisher.counters.statePublished == 1 && publisher.inflightCount == 0 }

        let late = try await Subscriber.subscribed(to: statusTopic, on: broker)
        let status = try #require(try await late.waitFor(count: 1).first)
        #expect(status.retained)
        #expect(status.payload.hasPrefix(#"{"state":"online","gateway":"gw-01","version":"\#(BuildInfo.version)","started":""#))
        #expect(status.payload.contains(#""since":""#))
        await publisher.stop()
    }

    @Test(arguments: [MQTTSettings.ProtocolVersion.v5, .v311])
    func willAnnouncesOfflineWhenTheConnectionDiesAbruptly(version: MQTTSettings.ProtocolVersion) async throws {
        let broker = try MosquittoBroker()
        let publisher = try await Harness.connected(Harness.settings(broker, version))
        let subscriber = try await Subscriber.subscribed(to: statusTopic, on: broker)
        try await subscriber.waitFor(count: 1)

        await publisher.abortWithoutDisconnect()
        let received = try await subscriber.waitFor(count: 2)
        #expect(received[1] == .init(topic: statusTopic, payload: #"{"state":"offline"}"#, retained: false))
        #expect(!publisher.isConnected)
    }

    @Test(arguments: [MQTTSettings.ProtocolVersion.v5, .v311])
    func cleanStopPublishesOfflineOnceAndTheBrokerDropsTheWill(version: MQTTSettings.ProtocolVersion) async throws {
        let broker = try MosquittoBroker()
        let settings = Harness.settings(broker, version)
        let publisher = try await Harness.connected(settings)
        let subscriber = try await Subscriber.subscribed(to: "accessgw/#", on: broker)
        try await subscriber.waitFor(count: 1)

        await publisher.stop()
        // A marker published after the stop: a Will would have been sent before the broker handled it.
        let (status, output) = try await ChildProcess.run("/usr/bin/mosquitto_pub",
                                                    broker.clientArguments + ["-q", "1", "-t", "accessgw/marker", "-m", "after-stop"])
        #expect(status == 0, "\(output)")
        let received = try await subscriber.waitFor(count: 3)
        #expect(received.map(\.payload).dropFirst() == [#"{"state":"offline"}"#, "after-stop"])
        #expect(broker.log.contains("Client \(settings.clientID) disconnected."), "\(broker.log)")

        let late = try await Subscriber.subscribed(to: statusTopic, on: broker)
        #expect(try await late.waitFor(count: 1) == [.init(topic: statusTopic, payload: #"{"state":"offline"}"#, retained: true)])
    }
}
