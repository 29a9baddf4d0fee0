import AccessModel
import CMosquitto
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Publishes journalled events with QoS 1 and reports each journal seq once its PUBACK arrives; keeps the
/// gateway's retained status and the devices' retained state. A thin shell around `PublisherStateMachine`:
/// libmosquitto's network thread does the I/O, reconnects and resends.
public final class MQTTPublisher: @unchecked Sendable {
    // @unchecked: `client` is safe to call from any thread (see MosquittoClient); every mutable field is in `shared`.
    public let settings: MQTTSettings
    public let status: GatewayStatus?
    /// Journal seqs whose PUBACK arrived, in arrival order, each once: the journal marks them published.
    /// Nothing arrives here once `setAcknowledgementHandler` has been called.
    public let acknowledgements: AsyncStream<Int64>
    let ackContinuation: AsyncStream<Int64>.Continuation
    let client: MosquittoClient
    let logger: Logger
    private let shared: Mutex<Shared>
    /// Request topics (commands) subscribed after every CONNACK, and who handles their messages.
    let subscriptions = Mutex<[String]>([])
    /// Who handles the messages of each subscribed filter (commands, replay).
    let messageHandlers = Mutex<[(filter: String, handler: Callback<IncomingMessage>)]>([])
    let subacks = Atomic<Int>(0)

    struct Shared {
        var machine: PublisherStateMachine
        var window: Window { (machine.allowance, machine.journalInflightCount) }
        var counters = MQTTPublisherCounters()
        var started = false
        var lastConnackRefused = false
        /// A session takeover is logged once: two gateways sharing a client id would otherwise log every second.
        var takeoverLogged = false
        /// When accepted connections were closed by the broker without a reason, within the last minute.
        var recentCloses: [ContinuousClock.Instant] = []
        var acknowledgementHandler: Callback<(Int64, Window)>?
        var refusalHandler: Callback<(Int64, Int32)>?
        var connectionHandler: Callback<Bool>?
        /// Publications made with `publishTracked`, by mid: nil while the PUBACK is awaited, then its reason code.
        var trackedOutcomes: [Int32: Int32?] = [:]
    }

    /// Journal events `publish` would accept right now, and journal events awaiting their PUBACK.
    public typealias Window = (available: Int, inflight: Int)

    public init(settings: MQTTSettings, status: GatewayStatus? = nil, logger: Logger) throws(MQTTError) {
        guard settings.maxInflight > 0, (0...2).contains(settings.qos) else {
            throw MQTTError(kind: .library, code: Int32(MOSQ_ERR_INVAL.rawValue), call: "MQTTSettings", broker: settings.broker,
                            message: "broker \(settings.broker): max_inflight must be at least 1 and qos 0, 1 or 2")
        }
        self.settings = settings
        self.status = status
        var logger = logger
        logger[metadataKey: "mqtt.broker"] = "\(settings.broker)"
        logger[metadataKey: "mqtt.client_id"] = "\(settings.clientID)"
        self.logger = logger
        (acknowledgements, ackContinuation) = AsyncStream.makeStream(of: Int64.self, bufferingPolicy: .unbounded)
        shared = Mutex(Shared(machine: PublisherStateMachine(maxInflight: settings.maxInflight)))
        client = try MosquittoClient(settings: settings, will: status?.will, forwardDebugLog: logger.logLevel <= .trace)
        client.setEventHandler { [weak self] event in self?.handle(event) }
    }

    // MARK: Lifecycle

    /// Starts connecting in the background; returns at once. Connection failures are retried with backoff and
    /// show in `counters`; only a configuration the library rejects throws.
    public func start() throws(MQTTError) {
        let first = shared.withLock { s -> Bool in
            guard !s.started else { return false }
            s.started = true
            s.machine.started()
            return true
        }
        guard first else { return }
        logger.info("connecting to MQTT broker", metadata: ["mqtt.settings": "\(settings)"])
        try client.start()
    }

    /// Waits up to `timeout` for in-flight PUBACKs, publishes `finalRetained` (the devices' states saying the gateway
    /// no longer watches them) and the retained offline status, and disconnects with a DISCONNECT so the broker
    /// discards the Will. Events still unacknowledged stay unpublished in the journal.
    public func stop(timeout: Duration = .seconds(5), finalRetained: [(topic: String, payload: String)] = []) async {
        let running = shared.withLock { s -> Bool in
            guard s.started, s.machine.connection != .disconnected else { return false }
            s.machine.stopRequested()
            return true
        }
        guard running else { ackContinuation.finish(); return }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        // Everything in flight first, the online status and retained state included, so the offline status is the
        // last publication of this run the broker hears of.
        await waitUntil(deadline) { $0.machine.inflightCount == 0 || !$0.machine.linkUp }

        var mids = finalRetained.compactMap { publishRetained(topic: $0.topic, payload: $0.payload) }
        if let status, let mid = publishRetained(topic: status.topic, payload: status.offlinePayload) { mids.append(mid) }
        await waitUntil(deadline) { s in !s.machine.linkUp || !mids.contains { s.machine.isInflight(mid: $0) } }
        let linkWasUp = shared.withLock { $0.machine.linkUp }
        do { try client.disconnect() } catch { logger.debug("\(error)") }
        if linkWasUp {
            await waitUntil(min(deadline, clock.now + .seconds(2))) { $0.machine.connection == .disconnected }
        }
        let ended = await onDedicatedThread { [client] in client.stopNetworkThread(timeout: .seconds(5)) }
        if !ended { logger.warning("the MQTT network thread did not end within 5 s") }
        let left = shared.withLock { s -> Int in
            s.machine.stopped()
            return s.machine.journalInflightCount
        }
        logger.info("disconnected from MQTT broker", metadata: ["mqtt.unacknowledged": "\(left)"])
        ackContinuation.finish()
    }

    /// Test support: drops the TCP connection without a DISCONNECT, as a crash would, so the broker publishes
    /// the Will; the publisher does not reconnect afterwards.
    public func abortWithoutDisconnect() async {
        shared.withLock { $0.machine.stopRequested() }
        client.abortWithoutDisconnect()
        _ = await onDedicatedThread { [client] in client.stopNetworkThread(timeout: .seconds(5)) }
        shared.withLock { $0.machine.stopped() }
        ackContinuation.finish()
    }

    /// Sends the journal seq of every PUBACK to `body` instead of `acknowledgements`, with the in-flight window as the
    /// PUBACK left it (read under the same lock). `body` runs on libmosquitto's network thread and must not block; it
    /// saves a hop through the cooperative pool per message.
    public func setAcknowledgementHandler(_ body: @escaping @Sendable (Int64, Window) -> Void) {
        let handler = Callback<(Int64, Window)> { body($0.0, $0.1) }
        shared.withLock { $0.acknowledgementHandler = handler }
    }

    /// Sends the journal seq and reason code of every publication the broker refused (MQTT 5 PUBACK reason 0x80
    /// or above, e.g. an ACL denial, 0x87) to `body`, on libmosquitto's network thread; it must not block. The
    /// publication is over: its slot is free again and it is not resent by this run.
    public func setRefusalHandler(_ body: @escaping @Sendable (Int64, Int32) -> Void) {
        let handler = Callback<(Int64, Int32)> { body($0.0, $0.1) }
        shared.withLock { $0.refusalHandler = handler }
    }

    /// Calls `body` on libmosquitto's network thread with true once a CONNACK accepted a connection and with false once
    /// an accepted connection is lost, so that whoever publishes starts (or stops) at once instead of at its next look.
    /// It must not block.
    public func setConnectionHandler(_ body: @escaping @Sendable (_ connected: Bool) -> Void) {
        let handler = Callback<Bool>(body)
        shared.withLock { $0.connectionHandler = handler }
    }

    // MARK: Publishing

    /// Publishes one journalled event (QoS from the settings, normally 1). Returns false, sending nothing, when
    /// disconnected, while carried-over events are resent, when `maxInflight` events await their PUBACK, or
    /// when `journalSeq` is not above the last one handed over: the caller keeps the event and tries again.
    /// With `wake` false the network thread is not told about it: the caller publishes a batch, then calls
    /// `wakeNetworkThread()` once.
    public func publish(topic: String, payload: String, retain: Bool = false, journalSeq: Int64, wake: Bool = true) -> Bool {
        var payload = payload
        return payload.withUTF8 {
            publish(topic: topic, bytes: UnsafeRawBufferPointer($0), retain: retain, journalSeq: journalSeq, wake: wake)
        }
    }

    public func publish(topic: String, payload: [UInt8], retain: Bool = false, journalSeq: Int64) -> Bool {
        payload.withUnsafeBytes { publish(topic: topic, bytes: $0, retain: retain, journalSeq: journalSeq, wake: true) }
    }

    /// Has the network thread send what `publish(…, wake: false)` queued (one wake-up for the whole batch).
    public func wakeNetworkThread() { client.wakeNetworkThread() }

    private func publish(topic: String, bytes: UnsafeRawBufferPointer, retain: Bool, journalSeq: Int64, wake: Bool) -> Bool {
        // The lock is held across mosquitto_publish so the mid is recorded before its PUBACK can be handled.
        let outcome = shared.withLock { s -> Result<Bool, MQTTError> in
            guard s.machine.maySend(journalSeq: journalSeq) else { return .success(false) }
            switch client.publish(topic: topic, payload: bytes, qos: settings.qos, retain: retain, wake: wake) {
            case let .sent(mid), let .queuedUntilConnected(mid):
                s.machine.published(mid: mid, journalSeq: journalSeq)
                s.counters.published += 1
                return .success(true)
            case let .failed(error):
                s.counters.lastError = error
                return .failure(error)
            }
        }
        switch outcome {
        case let .success(sent):
            return sent
        case let .failure(error):
            logger.error("\(error)", metadata: ["mqtt.topic": "\(topic)", "journal.seq": "\(journalSeq)"])
            return false
        }
    }

    /// Publishes a device's retained state (QoS 1, retained, not journal-tracked: the next change supersedes it).
    /// Returns false when disconnected or when libmosquitto refuses the message.
    @discardableResult
    public func publishState(topic: String, payload: String) -> Bool {
        guard shared.withLock({ $0.machine.isConnected }) else { return false }
        return publishRetained(topic: topic, payload: payload) != nil
    }

    private func publishRetained(topic: String, payload: String) -> Int32? {
        shared.withLock { s in publishRetainedLocked(&s, topic: topic, payload: payload) }
    }

    func publishRetainedLocked(_ s: inout Shared, topic: String, payload: String) -> Int32? {
        var payload = payload
        let outcome = payload.withUTF8 {
            client.publish(topic: topic, payload: UnsafeRawBufferPointer($0), qos: 1, retain: true, kind: .json)
        }
        switch outcome {
        case let .sent(mid), let .queuedUntilConnected(mid):
            s.machine.published(mid: mid, journalSeq: nil)
            s.counters.statePublished += 1
            return mid
        case let .failed(error):
            s.counters.lastError = error
            logger.error("\(error)", metadata: ["mqtt.topic": "\(topic)"])
            return nil
        }
    }

    // MARK: Helpers

    func withShared<T>(_ body: (inout Shared) -> T) -> T { shared.withLock { body(&$0) } }

    /// Polls `condition` every 10 ms until it holds or `deadline` passes.
    private func waitUntil(_ deadline: ContinuousClock.Instant, _ condition: (Shared) -> Bool) async {
        while !shared.withLock({ condition($0) }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    // MARK: Observing

    public var isConnected: Bool { shared.withLock { $0.machine.isConnected } }
    public var counters: MQTTPublisherCounters { shared.withLock { $0.counters } }
    /// Journal events `publish` would accept right now.
    public var availableSlots: Int { shared.withLock { $0.machine.allowance } }
    /// Journal events handed over and still waiting for their PUBACK.
    public var inflightCount: Int { shared.withLock { $0.machine.journalInflightCount } }
    /// `availableSlots` and `inflightCount` read under one lock.
    public var window: Window { shared.withLock { $0.window } }
    public var oldestUnacknowledgedJournalSeq: Int64? { shared.withLock { $0.machine.oldestUnacknowledgedJournalSeq } }
}
