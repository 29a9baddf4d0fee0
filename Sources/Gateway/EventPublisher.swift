import AccessModel
import Atomics
import BusPolling
import EventRing
import Foundation
import Journal
import Logging
import MQTTPublisher
import Synchronization

/// Drains the journal to the broker in journal order (so per-device order holds), at most `max_inflight`
/// at a time; marks events published only on their PUBACK; publishes changed device states, retained.
/// While the broker is unreachable the journal simply keeps the events.
public final class EventPublisher: @unchecked Sendable {
    // @unchecked: `cursor` and `seenStates` are touched only by the publisher thread; acknowledged seqs cross
    // threads through the `acknowledged` mutex; the rest is Sendable.
    let journal: Journal
    let mqtt: MQTTPublisher
    let board: DeviceStateBoard
    /// Retained state topic per device slot; a reload replaces it.
    let stateTopics: Mutex<[String]>
    let wakeBell: RingDoorbell
    let logger: Logger
    let acknowledged = Mutex<[Int64]>([])
    let stage: StageThread
    /// The highest journal seq handed to the MQTT client in this run.
    var cursor: Int64 = 0
    /// Monotonic milliseconds of the last `markPublished` commit: PUBACKs are recorded in batches.
    var lastMarked: Int64 = 0
    /// Whether the last journal read stopped at the window's edge, so more events wait to be sent.
    var hasUnsent = true
    let batchThreshold: Int
    static let markBatch = 256
    static let markIntervalMillis: Int64 = 50
    var seenStates: [UInt64] = []
    var wasConnected = false

    public init(journal: Journal, mqtt: MQTTPublisher, board: DeviceStateBoard, configuration: GatewayConfiguration,
                wakeBell: RingDoorbell, logger: Logger) {
        self.journal = journal
        self.mqtt = mqtt
        self.board = board
        stateTopics = Mutex(configuration.devices.map { Self.stateTopic(of: $0.id, in: configuration) })
        self.wakeBell = wakeBell
        stage = StageThread(wake: { wakeBell.ring() })
        self.logger = logger
        batchThreshold = max(1, configuration.mqtt.maxInflight / 4)
    }

    static func stateTopic(of device: String, in configuration: GatewayConfiguration) -> String {
        "\(configuration.mqtt.topicPrefix)/\(configuration.site)/\(device)/state"
    }

    /// Sets the state topics by device slot after a reload (before the board grows to the new slots).
    public func replaceStateTopics(devices: [String], configuration: GatewayConfiguration) {
        let topics = devices.map { Self.stateTopic(of: $0, in: configuration) }
        stateTopics.withLock { $0 = topics }
    }

    /// Starts the publishing thread and collects PUBACKs.
    public func start() {
        mqtt.setAcknowledgementHandler { [weak self] seq in self?.pubackArrived(seq) }
        stage.start { [self] in run() }
    }

    /// Stops handing out events and records the PUBACKs that arrived; the MQTT client is stopped by the caller.
    public func stop() {
        stage.stop()
        recordAcknowledgements(force: true)
    }

    func run() {
        while !stage.isStopping {
            recordAcknowledgements()
            let connected = mqtt.isConnected
            if connected != wasConnected {
                wasConnected = connected
                if connected { seenStates = [] }  // the broker may have lost retained states: send them all again
            }
            if connected {
                publishStates()
                publishEvents()
            }
            _ = wakeBell.wait(timeout: .milliseconds(Self.markIntervalMillis)) {
                stage.isStopping || (connected && hasUnsent && mayReadBatch(mqtt.window))
            }
        }
    }

    /// Whether the in-flight window has room for a journal read: with events in flight, only once a quarter of
    /// it is free. `run` sleeps until this holds, so a PUBACK that frees one slot does not start a read.
    func mayReadBatch(_ window: (available: Int, inflight: Int)) -> Bool {
        window.available > 0 && (window.available >= batchThreshold || window.inflight == 0)
    }

    /// Hands journalled events to the MQTT client in journal order while its in-flight window has room.
    func publishEvents() {
        while true {
            let window = mqtt.window
            guard mayReadBatch(window) else { return }
            let slots = window.available
            let events: [StoredEvent]
            do { events = try journal.unpublished(afterJournalSeq: cursor, limit: min(slots, 500)) } catch {
                logger.error("cannot read unpublished events from the journal: \(error)")
                return
            }
            hasUnsent = events.count == min(slots, 500)
            guard !events.isEmpty else { return }
            for event in events {
                guard mqtt.publish(topic: event.topic, payload: event.payload, journalSeq: event.journalSeq) else {
                    hasUnsent = true
                    return
                }
                cursor = event.journalSeq
            }
        }
    }

    func publishStates() {
        let topics = stateTopics.withLock { $0 }
        for (slot, state) in board.changes(since: &seenStates) where Int(slot) < topics.count {
            if !mqtt.publishState(topic: topics[Int(slot)], payload: state.serialized) {
                seenStates[Int(slot)] = 0  // try again on the next round
            }
        }
    }

    /// Runs on libmosquitto's network thread for each PUBACK: wakes the publisher only when it has something to
    /// do, a batch of PUBACKs to mark or room for a journal read, not once per message.
    func pubackArrived(_ seq: Int64) {
        let pending = acknowledged.withLock { all -> Int in
            all.append(seq)
            return all.count
        }
        if pending >= Self.markBatch || mayReadBatch(mqtt.window) { wakeBell.ring() }
    }

    /// Marks acknowledged events published, one transaction per batch of PUBACKs (every 50 ms or 256 acks).
    func recordAcknowledgements(force: Bool = false) {
        let now = monotonicMillis()
        let seqs = acknowledged.withLock { all -> [Int64] in
            guard force || all.count >= Self.markBatch || now - lastMarked >= Self.markIntervalMillis else { return [] }
            defer { all.removeAll(keepingCapacity: true) }
            return all
        }
        guard !seqs.isEmpty else { return }
        lastMarked = now
        do { _ = try journal.markPublished(seqs) } catch {
            logger.error("cannot mark \(seqs.count) event(s) published; they will be sent again: \(error)")
        }
    }
}
