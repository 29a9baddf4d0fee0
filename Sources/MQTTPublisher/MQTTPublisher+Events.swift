import AccessModel
import CMosquitto
import Logging
#if canImport(Glibc)
import Glibc
#endif

extension MQTTPublisher {
    /// Runs on libmosquitto's network thread, once per callback.
    func handle(_ event: MosquittoEvent) {
        switch event {
        case let .connected(code): connackReceived(code: code)
        case let .disconnected(rc, savedErrno): connectionEnded(rc: rc, errno: savedErrno)
        case let .acknowledged(mid, reasonCode): pubackReceived(mid: mid, reasonCode: reasonCode)
        case let .log(level, message): forwardLog(level: level, message)
        case let .message(message):
            let handlers = messageHandlers.withLock { $0 }
            handlers.first { Self.topic(message.topic, matches: $0.filter) }?.handler.body(message)
        case .subscribed: subacks.add(1, ordering: .releasing)
        }
    }

    private func connackReceived(code: Int32) {
        let refusal = MQTTError.refused(code, protocolVersion: settings.protocolVersion, broker: settings.broker)
        let carriedOver = withShared { s -> Int? in
            switch s.machine.connackReceived(code: code) {
            case let .publishStatus(carriedOver):
                s.counters.connects += 1
                s.lastConnackRefused = false
                if let status, s.machine.connection == .connected {
                    _ = publishRetainedLocked(&s, topic: status.topic, payload: status.onlinePayload())
                }
                return carriedOver
            case .refused:
                s.counters.connectionFailures += 1
                s.counters.lastError = refusal
                s.lastConnackRefused = true
                return nil
            }
        }
        if let carriedOver {
            logger.info("connected to MQTT broker", metadata: ["mqtt.resending": "\(carriedOver)", LogKind.key: "\(LogKind.mqttConnected)"])
            for topic in subscriptions.withLock({ $0 }) {
                do { try client.subscribe(topic: topic, qos: 1) } catch { logger.error("\(error)", metadata: ["mqtt.topic": "\(topic)"]) }
            }
            withShared { $0.connectionHandler }?.body(true)
        } else {
            // An ERROR once; the log handler turns the retries into one summary a minute until the broker connects.
            logger.error("\(refusal)", metadata: [LogKind.key: "\(LogKind.mqttRefused)"])
        }
    }

    private func connectionEnded(rc: Int32, errno savedErrno: Int32) {
        // MQTT 5: a DISCONNECT from the broker reports its reason code (0x80 and above) instead of a MOSQ_ERR_*.
        var byBroker = settings.protocolVersion == .v5 && rc >= 0x80
            ? MQTTError.disconnected(byBroker: rc, clientID: settings.clientID, broker: settings.broker) : nil
        let takeover = byBroker?.code == MQTTError.sessionTakenOver || withShared { s -> Bool in
            guard rc == Int32(MOSQ_ERR_CONN_LOST.rawValue), s.machine.linkUp else { return false }
            let now = ContinuousClock.now
            s.recentCloses = s.recentCloses.filter { now - $0 < Self.takeoverWindow } + [now]
            return s.recentCloses.count >= Self.closesSuggestingTakeover
        }
        if takeover, byBroker == nil {
            byBroker = .probablyTakenOver(closes: Self.closesSuggestingTakeover, within: Int(Self.takeoverWindow.components.seconds),
                                          clientID: settings.clientID, broker: settings.broker)
        }
        let (action, refusedBefore, firstTakeover) = withShared { s -> (PublisherStateMachine.DisconnectAction, Bool, Bool) in
            let action = s.machine.disconnected(rc: rc)
            let refusedBefore = s.lastConnackRefused
            s.lastConnackRefused = false
            var firstTakeover = false
            switch action {
            case .stopped: break
            case .connectionLost, .attemptFailed:
                if !refusedBefore {
                    s.counters.connectionFailures += 1
                    s.counters.lastError = byBroker ?? (action == .attemptFailed
                        ? .unreachable(rc, broker: settings.broker, errno: savedErrno, detail: client.lastLoggedError)
                        : .lost(rc, broker: settings.broker, errno: savedErrno))
                }
                if takeover {
                    s.counters.sessionTakeovers += 1
                    firstTakeover = !s.takeoverLogged
                    s.takeoverLogged = true
                }
            }
            return (action, refusedBefore, firstTakeover)
        }
        if case .connectionLost = action { withShared { $0.connectionHandler }?.body(false) }
        switch action {
        case .stopped:
            return
        case let .connectionLost(held):
            if takeover, let byBroker {
                if firstTakeover {
                    logger.error("\(byBroker); further takeovers are counted, not logged", metadata: ["mqtt.unacknowledged": "\(held)"])
                } else {
                    logger.debug("\(byBroker)")
                }
                return
            }
            logger.warning("\(byBroker ?? MQTTError.lost(rc, broker: settings.broker, errno: savedErrno))",
                           metadata: ["mqtt.unacknowledged": "\(held)", LogKind.key: "\(LogKind.mqttConnectionLost)"])
        case .attemptFailed where !refusedBefore:
            logger.error("\(MQTTError.unreachable(rc, broker: settings.broker, errno: savedErrno, detail: client.lastLoggedError))",
                         metadata: [LogKind.key: "\(LogKind.mqttUnreachable)"])
        case .attemptFailed:
            break
        }
    }

    static let takeoverWindow: Duration = .seconds(60)
    static let closesSuggestingTakeover = 3

    private func pubackReceived(mid: Int32, reasonCode: Int32) {
        let (action, window, handler, refusalHandler) = withShared {
            s -> (PublisherStateMachine.AckAction, Window, Callback<(Int64, Window)>?, Callback<(Int64, Int32)>?) in
            let action = s.machine.acknowledged(mid: mid, reasonCode: reasonCode)
            if case .some(.none) = s.trackedOutcomes[mid] {
                // A tracked publication (a refused event sent again): its owner reads and counts the outcome.
                s.trackedOutcomes[mid] = .some(reasonCode)
                return (.unknown, s.window, s.acknowledgementHandler, s.refusalHandler)
            }
            switch action {
            case .markPublished: s.counters.acknowledged += 1
            case .rejected: s.counters.rejected += 1
                s.counters.lastError = .rejected(reasonCode, topic: nil, broker: settings.broker)
            case .stateAcknowledged, .unknown: break
            }
            return (action, s.window, s.acknowledgementHandler, s.refusalHandler)
        }
        switch action {
        case let .markPublished(journalSeq):
            if let handler { handler.body((journalSeq, window)) } else { ackContinuation.yield(journalSeq) }
        case let .rejected(journalSeq, reasonCode):
            // Rate-limited by the log handler (one ERROR, then a summary a minute): a broker refusing a whole type
            // of event must not flood the log from the network thread, which also carries the PUBACKs and pings.
            logger.error("\(MQTTError.rejected(reasonCode, topic: nil, broker: settings.broker))",
                         metadata: ["journal.seq": "\(journalSeq.map(String.init) ?? "-")", LogKind.key: "\(LogKind.mqttPublicationRefused)"])
            if let journalSeq, let refusalHandler { refusalHandler.body((journalSeq, reasonCode)) }
        case .stateAcknowledged, .unknown:
            break
        }
    }

    private func forwardLog(level: Int32, _ message: String) {
        switch level {
        case MOSQ_LOG_ERR: logger.error("libmosquitto: \(message)")
        case MOSQ_LOG_WARNING: logger.warning("libmosquitto: \(message)")
        case MOSQ_LOG_DEBUG: logger.trace("libmosquitto: \(message)")
        default: logger.debug("libmosquitto: \(message)")
        }
    }
}
