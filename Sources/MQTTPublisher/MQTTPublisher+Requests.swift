import Synchronization

/// Subscriptions for requests (commands, SPEC 4.1) and replies to them.
extension MQTTPublisher {
    /// Boxed like the acknowledgement handler.
    final class MessageHandler: Sendable {
        let body: @Sendable (IncomingMessage) -> Void
        init(_ body: @escaping @Sendable (IncomingMessage) -> Void) { self.body = body }
    }

    /// Subscribes to `topic` with QoS 1 on every connection from now on; `handler` runs on libmosquitto's network
    /// thread for each message and must hand it on quickly.
    public func subscribe(_ topic: String, handler: @escaping @Sendable (IncomingMessage) -> Void) {
        messageHandler.withLock { $0 = MessageHandler(handler) }
        subscriptions.withLock { $0.append(topic) }
        if isConnected { try? client.subscribe(topic: topic, qos: 1) }
    }

    /// Publishes a reply (QoS 1, not retained, not journal-tracked) with the request's Correlation Data echoed.
    /// Returns false when libmosquitto refuses it; a reply to a request is not retried (the audit event is).
    @discardableResult
    public func publishReply(topic: String, payload: [UInt8], correlationData: [UInt8]?) -> Bool {
        publish(topic: topic, payload: payload, properties: RequestProperties(correlationData: correlationData))
    }

    /// Publishes an MQTT 5 request (QoS 1, not retained) with its properties: `accessgw send`.
    @discardableResult
    public func publish(topic: String, payload: [UInt8], properties: RequestProperties) -> Bool {
        withShared { s in
            let outcome = payload.withUnsafeBytes { client.publishV5(topic: topic, payload: $0, qos: 1, properties: properties) }
            switch outcome {
            case let .sent(mid), let .queuedUntilConnected(mid):
                s.machine.published(mid: mid, journalSeq: nil)
                return true
            case let .failed(error):
                s.counters.lastError = error
                logger.error("\(error)", metadata: ["mqtt.topic": "\(topic)"])
                return false
            }
        }
    }

    /// SUBACKs received since start (MQTT 5).
    public var subscriptionsAcknowledged: Int { subacks.load(ordering: .acquiring) }
}
