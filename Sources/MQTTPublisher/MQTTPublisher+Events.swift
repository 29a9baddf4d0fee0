import CMosquitto
import Dispatch
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
        }
    }

    private func connackReceived(code: Int32) {
        let refusal = MQTTError.refused(code, protocolVersion: settings.protocolVersion, broker: settings.broker)
        let carriedOver = withShared { s -> Int? in
            switch s.machine.connackReceived(code: code) {
            case let .publishStatus(carriedOver):
                s.counters.connects += 1
                s.lastConnackRefused = false
                s.restartAttempts = 0
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
            logger.info("connected to MQTT broker", metadata: ["mqtt.resending": "\(carriedOver)"])
        } else {
            logger.error("\(refusal)")
        }
    }

    private func connectionEnded(rc: Int32, errno savedErrno: Int32) {
        let (action, refusedBefore) = withShared { s -> (PublisherStateMachine.DisconnectAction, Bool) in
            let action = s.machine.disconnected(rc: rc)
            let refusedBefore = s.lastConnackRefused
            s.lastConnackRefused = false
            switch action {
            case .stopped: break
            case .connectionLost, .attemptFailed:
                if !refusedBefore {
                    s.counters.connectionFailures += 1
                    s.counters.lastError = action == .attemptFailed
                        ? .unreachable(rc, broker: settings.broker, errno: savedErrno)
                        : .lost(rc, broker: settings.broker, errno: savedErrno)
                }
            }
            return (action, refusedBefore)
        }
        switch action {
        case .stopped:
            return
        case let .connectionLost(held):
            logger.warning("\(MQTTError.lost(rc, broker: settings.broker, errno: savedErrno))",
                           metadata: ["mqtt.unacknowledged": "\(held)"])
        case .attemptFailed where !refusedBefore:
            logger.warning("\(MQTTError.unreachable(rc, broker: settings.broker, errno: savedErrno))")
        case .attemptFailed:
            break
        }
        if Self.endsNetworkThread(rc: rc, errno: savedErrno) { scheduleRestart() }
    }

    private func pubackReceived(mid: Int32, reasonCode: Int32) {
        let action = withShared { s -> PublisherStateMachine.AckAction in
            let action = s.machine.acknowledged(mid: mid, reasonCode: reasonCode)
            switch action {
            case .markPublished: s.counters.acknowledged += 1
            case .rejected: s.counters.rejected += 1
                s.counters.lastError = .rejected(reasonCode, topic: nil, broker: settings.broker)
            case .stateAcknowledged, .unknown: break
            }
            return action
        }
        switch action {
        case let .markPublished(journalSeq):
            ackContinuation.yield(journalSeq)
        case let .rejected(journalSeq, reasonCode):
            logger.error("\(MQTTError.rejected(reasonCode, topic: nil, broker: settings.broker))",
                         metadata: ["journal.seq": "\(journalSeq.map(String.init) ?? "-")"])
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

    /// The return codes after which `mosquitto_loop_forever` (lib/loop.c) returns instead of reconnecting,
    /// among them an MQTT 5 refusal (`handle__connack` answers reason codes above 5 with MOSQ_ERR_PROTOCOL).
    static func endsNetworkThread(rc: Int32, errno savedErrno: Int32) -> Bool {
        let fatal: [mosq_err_t] = [MOSQ_ERR_NOMEM, MOSQ_ERR_PROTOCOL, MOSQ_ERR_INVAL, MOSQ_ERR_NOT_FOUND, MOSQ_ERR_TLS,
                                   MOSQ_ERR_PAYLOAD_SIZE, MOSQ_ERR_NOT_SUPPORTED, MOSQ_ERR_AUTH, MOSQ_ERR_ACL_DENIED,
                                   MOSQ_ERR_UNKNOWN, MOSQ_ERR_EAI, MOSQ_ERR_PROXY]
        return fatal.contains { Int32($0.rawValue) == rc } || savedErrno == EPROTO
    }

    /// The network thread has ended itself: join it and start a new one after a growing delay, unless stopping.
    private func scheduleRestart() {
        let delay = withShared { s -> Duration? in
            guard !s.restartPending, s.machine.connection == .connecting else { return nil }
            s.restartPending = true
            s.restartAttempts += 1
            let low = settings.reconnectDelay.lowerBound, high = settings.reconnectDelay.upperBound
            return min(high, low * (1 << min(s.restartAttempts - 1, 16)))
        }
        guard let delay else { return }
        let millis = Int(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)
        logger.info("restarting the MQTT network thread", metadata: ["mqtt.delay": "\(delay)"])
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(millis)) { [weak self] in
            guard let self else { return }
            let go = self.withShared { s -> Bool in
                s.restartPending = false
                return s.machine.connection == .connecting
            }
            guard go else { return }
            do { try self.client.restartNetworkThread() } catch { self.logger.error("\(error)") }
        }
    }
}
