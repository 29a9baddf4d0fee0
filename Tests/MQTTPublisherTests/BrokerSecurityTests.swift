import Foundation
import MQTTPublisher
import Testing
import TestSupport

@Suite(.serialized) struct BrokerSecurityTests {
    @Test(arguments: [false, true])
    func publishesOverTLSWithTheTestCA(requireClientCertificate: Bool) async throws {
        let broker = try MosquittoBroker(.init(tls: true, requireClientCertificate: requireClientCertificate))
        var settings = Harness.settings(broker)
        if !requireClientCertificate { settings.tls = .init(caFile: try #require(broker.certificates).caFile) }
        let subscriber = try await Subscriber.subscribed(to: Harness.eventTopic(), on: broker)
        let publisher = try await Harness.connected(settings)

        #expect(publisher.publish(topic: Harness.eventTopic(), payload: Harness.payload(1), journalSeq: 1))
        #expect(try await subscriber.waitFor(count: 1).map(\.payload) == [Harness.payload(1)])
        await publisher.stop()
    }

    @Test func aServerCertificateFromAnotherCAIsRefused() async throws {
        let broker = try MosquittoBroker(.init(tls: true))
        let otherCA = try TestCertificates(in: try makeTemporaryDirectory("other-ca"))
        var settings = Harness.settings(broker)
        settings.tls = .init(caFile: otherCA.caFile)
        let publisher = try MQTTPublisher(settings: settings, status: Harness.status, logger: Harness.logger)
        try publisher.start()
        try await waitUntil("a failed TLS connection is counted") { publisher.counters.connectionFailures >= 1 }
        #expect(!publisher.isConnected)
        let message = try #require(publisher.counters.lastError?.message)
        #expect(message.hasPrefix("cannot connect to broker \(settings.broker): a TLS error occurred ("), "\(message)")
        #expect(message.contains("certificate verify failed"), "\(message)")
        await publisher.stop(timeout: .seconds(1))
    }

    @Test func missingTLSFilesAreNamedInTheError() throws {
        var settings = MQTTSettings(host: "127.0.0.1", port: 8883, clientID: "accessgw-test")
        settings.tls = .init(caFile: "/nonexistent/ca.pem")
        #expect { try MQTTPublisher(settings: settings, logger: Harness.logger) } throws: { error in
            (error as? MQTTError)?.message.contains("127.0.0.1:8883: cannot use the TLS files /nonexistent/ca.pem") == true
        }
    }

    @Test(arguments: [MQTTSettings.ProtocolVersion.v5, .v311])
    func publishesWithUsernameAndPassword(version: MQTTSettings.ProtocolVersion) async throws {
        let broker = try MosquittoBroker(.init(users: ["gw-01": "s3cret pass", "reader": "r"]))
        var settings = Harness.settings(broker, version)
        settings.username = "gw-01"
        settings.password = "s3cret pass"
        let subscriber = try await Subscriber.subscribed(to: Harness.eventTopic(), on: broker, username: "reader", password: "r")
        let publisher = try await Harness.connected(settings)

        #expect(publisher.publish(topic: Harness.eventTopic(), payload: Harness.payload(1), journalSeq: 1))
        #expect(try await subscriber.waitFor(count: 1).map(\.payload) == [Harness.payload(1)])
        #expect(!"\(settings)".contains("s3cret"))
        await publisher.stop()
    }

    @Test(arguments: [MQTTSettings.ProtocolVersion.v5, .v311])
    func refusedCredentialsGiveAClearErrorAndACounter(version: MQTTSettings.ProtocolVersion) async throws {
        let broker = try MosquittoBroker(.init(users: ["gw-01": "s3cret"]))
        var settings = Harness.settings(broker, version)
        settings.username = "gw-01"
        settings.password = "wrong"
        let publisher = try MQTTPublisher(settings: settings, status: Harness.status, logger: Harness.logger)
        try publisher.start()

        try await waitUntil("a refused connection is counted") { publisher.counters.connectionFailures >= 1 }
        let error = try #require(publisher.counters.lastError)
        let expected = version == .v5 ? "not authorized" : "not authorised"
        #expect(error.message == "broker 127.0.0.1:\(broker.port) refused the connection: \(expected)")
        #expect(error.kind == .connectionRefused)
        #expect(!publisher.isConnected)
        #expect(!publisher.publish(topic: Harness.eventTopic(), payload: Harness.payload(1), journalSeq: 1))
        // The library keeps trying (the operator may fix the broker): a second refusal is counted as well.
        try await waitUntil("a second attempt", timeout: .seconds(10)) { publisher.counters.connectionFailures >= 2 }
        await publisher.stop(timeout: .seconds(1))
    }
}
