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
        publishOutsideJournalOrder(topic: topic, payload: payload, keepingOutcome: false)
    }

    /// Publishes a journalled event outside journal order (QoS 1, not retained, not journal-tracked) and keeps its
    /// PUBACK's reason code for `takeOutcomes`: how events the broker refused are sent again once it may take them.
    /// A failure is not logged here: the refused-event retrier summarises its own.
    public func publishTracked(topic: String, payload: String) -> Int32? {
        publishOutsideJournalOrder(topic: topic, payload: payload, keepingOutcome: true)
    }

    private func publishOutsideJournalOrder(topic: String, payload: String, keepingOutcome: Bool) -> Int32? {
        var payload = payload
        return withShared { s in
            let outcome = payload.withUTF8 {
                client.publish(topic: topic, payload: UnsafeRawBufferPointer($0), qos: 1, retain: false, kind: .cloudEvent)
            }
            switch outcome {
            case let .sent(mid), let .queuedUntilConnected(mid):
                s.machine.published(mid: mid, journalSeq: nil)
                if keepingOutcome { s.trackedOutcomes[mid] = .some(nil) }
                return mid
            case let .failed(error):
                s.counters.lastError = error
                if !keepingOutcome { logger.error("\(error)", metadata: ["mqtt.topic": "\(topic)"]) }
                return nil
            }
        }
    }

    /// The reason codes of the PUBACKs that arrived for `mids` (published with `publishTracked`), each once; with
    /// `abandoning`, the others are forgotten too (their PUBACK then counts as unknown).
    public func takeOutcomes(_ mids: [Int32], abandoning: Bool = false) -> [Int32: Int32] {
        withShared { s in
            var arrived: [Int32: Int32] = [:]
            for mid in mids {
                if case let .some(.some(code)) = s.trackedOutcomes[mid] {
                    arrived[mid] = code
                    s.trackedOutcomes[mid] = nil
                } else if abandoning {
                    s.trackedOutcomes[mid] = nil
                }
            }
            return arrived
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

    /// Publishes a reply (QoS 1, not retained, not journal-tracked) with the request's Correlation Data echoed,
    /// Content Type `application/json` and the UTF-8 payload format indicator.
    /// Returns false when libmosquitto refuses it; a reply to a request is not retried (the audit event is).
    @discardableResult
    public func publishReply(topic: String, payload: [UInt8], correlationData: [UInt8]?) -> Bool {
        publish(topic: topic, payload: payload, properties: RequestProperties(correlationData: correlationData,
                                                                              contentType: "application/json"))
    }

    /// Publishes an MQTT 5 request (QoS 1, not retained) with its properties: `accessgw send`; retained for the
    /// collector's signed receipts (SPEC 4.3).
    @discardableResult
    public func publish(topic: String, payload: [UInt8], properties: RequestProperties) -> Bool {
        withShared { s in
            let outcome = payload.withUnsafeBytes {
                client.publishV5(topic: topic, payload: $0, qos: 1, properties: properties)
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
