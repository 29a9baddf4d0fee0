import Foundation
import Logging
import MQTTPublisher
import TestSupport

/// Collects the publisher's acknowledged journal seqs as they arrive.
final class AckCollector: @unchecked Sendable {
    // @unchecked: `seqs` is only touched under `lock`.
    private let lock = NSLock()
    private var seqs: [Int64] = []
    private var task: Task<Void, Never>?

    init(_ publisher: MQTTPublisher) {
        task = Task { [weak self] in
            for await seq in publisher.acknowledgements {
                guard let self else { return }
                self.lock.withLock { self.seqs.append(seq) }
            }
        }
    }

    var all: [Int64] { lock.withLock { seqs } }
    var count: Int { lock.withLock { seqs.count } }

    /// Waits until the stream ends (after `stop`) and returns everything acknowledged.
    func finished() async -> [Int64] {
        await task?.value
        return all
    }
}

enum Harness {
    static let logger: Logger = {
        var logger = Logger(label: "accessgw.mqtt.test")
        logger.logLevel = .info
        return logger
    }()

    static func settings(_ broker: MosquittoBroker, _ version: MQTTSettings.ProtocolVersion = .v5,
                         maxInflight: Int = 20, clientID: String = "accessgw-test-\(UUID().uuidString.prefix(6))")
        -> MQTTSettings {
        var settings = MQTTSettings(host: broker.host, port: broker.port, clientID: clientID, protocolVersion: version,
                                    keepalive: .seconds(10), maxInflight: maxInflight,
                                    reconnectDelay: .seconds(1) ... .seconds(2))
        if let certificates = broker.certificates {
            settings.tls = .init(caFile: certificates.caFile, certFile: certificates.clientCertFile,
                                 keyFile: certificates.clientKeyFile)
        }
        return settings
    }

    static let status = GatewayStatus.gateway(prefix: "accessgw", site: "test-site", gateway: "gw-01")

    static func eventTopic(_ device: String = "door-1") -> String { "accessgw/test-site/\(device)/event/access.granted" }

    /// A CloudEvent naming its journal seq, with spaces and non-ASCII text like real events; valid against
    /// `Schemas/` like everything the tests see on the gateway's topics.
    static func payload(_ seq: Int64) -> String {
        #"{"specversion":"1.0","id":"test-site/door-1/LPR-1.1/\#(seq)","source":"/accessgw/test-site/door-1","#
            + #""type":"access.granted","time":"2026-11-27T08:01:02.345Z","subject":"door-1","#
            + #""recordedtime":"2026-11-27T08:01:02.401Z","datacontenttype":"application/json","#
            + #""dataschema":"https://accessgw.example/schemas/events/access.granted/v1.json","#
            + #""dataclassification":"confidential","dataregulation":"pipl","#
            + #""data":{"site":"test-site","gateway":"gw-01","device":"door-1","kind":"plate-reader","#
            + #""location":{"entrance":"gate 3 east"},"seq":\#(max(1, seq)),"boot":1,"alarm":false,"method":"plate","#
            + #""plate":"云A12345","raw":{"code":1,"point":3,"direction":1,"value":962,"extra":0,"flags":0}}}"#
    }

    /// Publishes journal seqs `range` in order the way the journal reader does: hands over what the window
    /// allows and retries a refused seq until it is taken.
    static func publishInOrder(_ publisher: MQTTPublisher, _ range: ClosedRange<Int64>, topic: String = eventTopic(),
                               timeout: Duration = .seconds(30)) async throws {
        var next = range.lowerBound
        let deadline = ContinuousClock.now + timeout
        while next <= range.upperBound {
            if publisher.publish(topic: topic, payload: payload(next), journalSeq: next) {
                next += 1
            } else {
                guard ContinuousClock.now < deadline else { throw PublishTimedOut(seq: next) }
                try await Task.sleep(for: .milliseconds(1))
            }
        }
    }

    static func connected(_ settings: MQTTSettings, status: GatewayStatus? = Harness.status) async throws -> MQTTPublisher {
        let publisher = try MQTTPublisher(settings: settings, status: status, logger: logger)
        try publisher.start()
        try await waitUntil("publisher connected to \(settings.broker)") { publisher.isConnected }
        return publisher
    }
}

struct PublishTimedOut: Error, CustomStringConvertible {
    var seq: Int64
    var description: String { "the publisher never accepted journal seq \(seq)" }
}
