import CMosquitto
import Synchronization

/// Subscriptions for requests (commands, SPEC 4.1) and replies to them.
extension MQTTPublisher {
    /// Subscribes to `topic` with QoS 1 on every connection from now on; `handler` runs on libmosquitto's network
    /// thread for each message and must hand it on quickly.
    public func subscribe(_ topic: String, handler: @escaping @Sendable (IncomingMessage) -> Void) {
        messageHandlers.withLock { $0.append((topic, Callback(handler))) }
        subscriptions.withLock { $0.append(topic) }
        if isConnected { try? client.subscribe(topic: topic, qos: 1) }
    }

    /// Whether `topic` matches the subscription `filter` (`mosquitto_topic_matches_sub`). A shared subscription
    /// (`$share/{group}/{filter}`, MQTT 5) delivers messages on the topics of its filter.
    static func topic(_ topic: String, matches filter: String) -> Bool {
        var filter = Substring(filter)
        if filter.hasPrefix("$share/") {
            let levels = filter.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
            guard levels.count == 3 else { return false }
            filter = levels[2]
        }
        var result = false
        return mosquitto_topic_matches_sub(String(filter), topic, &result) == Int32(MOSQ_ERR_SUCCESS.rawValue) && result
    }

    /// Publishes a journalled event again for a replay (SPEC 4.2): QoS 1, not retained, not journal-tracked, with the
    /// event's MQTT 5 properties. Returns its message id, to follow its PUBACK with `replayWindow`.
    public func publishReplayed(topic: String, payload: String) -> Int32? {
        var payload = payload
        return withShared { s in
            let outcome = payload.withUTF8 {
                client.publish(topic: topic, payload: UnsafeRawBufferPointer($0), qos: 1, retain: false, kind: .cloudEvent)
            }
            switch outcome {
            case let .sent(mid), let .queuedUntilConnected(mid):
                s.machine.published(mid: mid, journalSeq: nil)
                return mid
            case let .failed(error):
                s.counters.lastError = error
                logger.error("\(error)", metadata: ["mqtt.topic": "\(topic)"])
                return nil
            }
        }
    }

    /// Replay's view of the window, under the lock once (replay asks before every event it sends, and each
    /// acquisition is one the live publisher may wait for): drops from `pending` the replayed messages no longer
    /// awaiting a PUBACK, and tells whether the link is up and how many journal (live) events are in flight.
    public func replayWindow(pending: inout [Int32]) -> (connected: Bool, liveInflight: Int) {
        withShared { s in
            let linkUp = s.machine.linkUp
            pending.removeAll { !(linkUp && s.machine.isInflight(mid: $0)) }
            return (s.machine.isConnected, s.machine.journalInflightCount)
        }
    }

    /// Publishes a reply (QoS 1, not retained, not journal-tracked) with the request's Correlation Data echoed.
    /// Returns false when libmosquitto refuses it; a reply to a request is not retried (the audit event is).
    @discardableResult
    public func publishReply(topic: String, payload: [UInt8], correlationData: [UInt8]?) -> Bool {
        publish(topic: topic, payload: payload, properties: RequestProperties(correlationData: correlationData))
    }

    /// Publishes an MQTT 5 request (QoS 1, not retained) with its properties: `accessgw send`; retained for the
    /// collector's signed receipts (SPEC 4.3).
    @discardableResult
    public func publish(topic: String, payload: [UInt8], properties: RequestProperties, retain: Bool = false) -> Bool {
        withShared { s in
            let outcome = payload.withUnsafeBytes {
                client.publishV5(topic: topic, payload: $0, qos: 1, retain: retain, properties: properties)
            }
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
