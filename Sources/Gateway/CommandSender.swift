import AccessModel
import Foundation
import Logging
import MQTTPublisher
import RequestAuthority
import Synchronization

/// `accessgw send`: an issuer's side of SPEC 4.1. Signs one request, publishes it with MQTT 5 (user property
/// `signature`, Response Topic, Correlation Data) and waits for the gateway's reply.
public struct CommandSender: Sendable {
    public var settings: MQTTSettings
    public var topicPrefix: String
    public var site: String
    public var logger: Logger

    public init(settings: MQTTSettings, topicPrefix: String, site: String, logger: Logger) {
        self.settings = settings
        self.topicPrefix = topicPrefix
        self.site = site
        self.logger = logger
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The reply's JSON text and its `status`.
    public struct Reply: Sendable {
        public var text: String
        public var status: String
    }

    /// The request payload (SPEC 4.1) for `args`, made now.
    public static func payload(id: String, issuer: String, time: Timestamp, ttlMillis: Int64, args: [(String, JSONValue)],
                               reason: String?) -> [UInt8] {
        var fields: [(String, JSONValue)] = [("id", .string(id)), ("issuer", .string(issuer)), ("time", .string(time.rfc3339)),
                                             ("ttl_ms", .int(ttlMillis)), ("args", .object(args))]
        if let reason { fields.append(("reason", .string(reason))) }
        var bytes: [UInt8] = []
        JSONValue.object(fields).write(to: &bytes)
        return bytes
    }

    public func send(device: String, command: String, args: [(String, JSONValue)], issuer: String, key: Ed25519PrivateKey,
                     ttlMillis: Int64, reason: String? = nil) async throws -> Reply {
        let nonce = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let id = "\(issuer)-\(nonce)"
        let topic = "\(topicPrefix)/\(site)/\(device)/command/\(command)"
        let replyTopic = "\(topicPrefix)/\(site)/reply/\(issuer)/\(nonce)"
        var settings = settings
        settings.clientID = "accessgw-send-\(issuer)-\(nonce)"
        let mqtt = try MQTTPublisher(settings: settings, logger: logger)
        let received = Mutex<[UInt8]?>(nil)
        mqtt.subscribe(replyTopic) { message in received.withLock { $0 = $0 ?? message.payload } }
        try mqtt.start()
        defer { Task { await mqtt.stop(timeout: .seconds(1)) } }
        let connectBy = ContinuousClock.now + .seconds(10)
        while mqtt.subscriptionsAcknowledged == 0 {
            guard ContinuousClock.now < connectBy else {
                throw Failure(description: "no SUBACK from broker \(settings.broker) within 10s (\(mqtt.counters.lastError.map { "\($0)" } ?? "not connected"))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let payload = Self.payload(id: id, issuer: issuer, time: .now, ttlMillis: ttlMillis, args: args, reason: reason)
        let signature = try RequestAuthority.signature(topic: topic, payload: payload, key: key)
        let properties = RequestProperties(responseTopic: replyTopic, correlationData: Array(id.utf8),
                                           userProperties: [("signature", signature)])
        guard mqtt.publish(topic: topic, payload: payload, properties: properties) else {
            throw Failure(description: "broker \(settings.broker) refused the request on \(topic)")
        }
        let replyBy = ContinuousClock.now + .milliseconds(ttlMillis) + .seconds(5)
        while ContinuousClock.now < replyBy {
            if let bytes = received.withLock({ $0 }) {
                let text = String(decoding: bytes, as: UTF8.self)
                let status = (try? JSONValue(parsing: bytes))?["status"].flatMap { value -> String? in
                    if case let .string(s) = value { return s } else { return nil }
                } ?? "unknown"
                return Reply(text: text, status: status)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw Failure(description: "no reply to \(id) on \(replyTopic) within \(ttlMillis + 5000)ms (is commands.enabled on the gateway?)")
    }
}
