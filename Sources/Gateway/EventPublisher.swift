import AccessModel
import Atomics
import BusPolling
import EventRing
import Foundation
import Journal
import Logging
import Metrics
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
    /// Retained state topic per device slot, nil for a device a reload removed; a reload replaces it.
    let stateTopics: Mutex<[String?]>
    /// Retained state topics of removed devices still to be cleared (an empty retained message), sent once connected.
    let pendingClears = Mutex<[String]>([])
    let wakeBell: RingDoorbell
    /// What the publisher sleeps on while the in-flight window has no room for a batch, instead of `wakeBell`, which
    /// the writer rings after every commit: rung by PUBACKs and refusals (room again, or acks to mark), stop and reload.
    let roomBell: RingDoorbell
    /// Set by the network thread when it rings for a PUBACK, cleared by the publisher as it goes to sleep: one ring
    /// per sleep, not one per PUBACK while the woken thread is on its way.
    let rung = ManagedAtomic<Bool>(false)
    let logger: Logger
    let acknowledged = Mutex<[Int64]>([])
    /// Events the broker refused (PUBACK reason >= 0x80), with the reason: journalled as refused, never resent.
    let refused = Mutex<[(journalSeq: Int64, reason: Int32)]>([])
    let stage: StageThread
    /// The highest journal seq handed to the MQTT client in this run.
    var cursor: Int64 = 0
    /// Monotonic milliseconds of the last `markPublished` commit: PUBACKs are recorded in batches.
    var lastMarked: Int64 = 0
    /// Whether the last journal read stopped at the window's edge, so more events wait to be sent.
    var hasUnsent = true
    let batchThreshold: Int
    /// A backlog drains at 25-40k events/s: with 256 acks a batch the publisher marked ~120 times a second, each a
    /// transaction waiting for the writer's lock (held across its FULL commits); now the 50 ms mostly decide.
    static let markBatch = 2048
    static let markIntervalMillis: Int64 = 50
    /// The writer holds the journal across its FULL commits, whose fsync now and then takes tens of milliseconds: a
    /// batch is marked only if the journal is free, unless this many acks wait or the last mark is this old.
    static let markBatchMax = 4 * markBatch
    static let markWaitAfterMillis: Int64 = 1000
    /// Events handed to the client, by where they came from: the writer's in-memory hand-off or a journal read.
    let fromMemory = Counter(label: "accessgw_publisher_events_total", dimensions: [("source", "memory")])
    let fromJournal = Counter(label: "accessgw_publisher_events_total", dimensions: [("source", "journal")])
    /// The same two counts, readable in-process (the bench prints them).
    public let sentFromMemory = ManagedAtomic<Int>(0)
    public let sentFromJournal = ManagedAtomic<Int>(0)
    var seenStates: [UInt64] = []
    /// Set once the final (offline) states are handed out: no older state may overwrite them afterwards.
    let statesFinal = ManagedAtomic<Bool>(false)
    var wasConnected = false

    public init(journal: Journal, mqtt: MQTTPublisher, board: DeviceStateBoard, configuration: GatewayConfiguration,
                wakeBell: RingDoorbell, logger: Logger) {
        self.journal = journal
        self.mqtt = mqtt
        self.board = board
        stateTopics = Mutex(configuration.devices.map { Self.stateTopic(of: $0.id, in: configuration) })
        self.wakeBell = wakeBell
        let roomBell = RingDoorbell()
        self.roomBell = roomBell
        stage = StageThread(name: "gw-publisher", wake: { wakeBell.ring(); roomBell.ring() })
        self.logger = logger
        batchThreshold = max(1, configuration.mqtt.maxInflight / 4)
    }

    static func stateTopic(of device: String, in configuration: GatewayConfiguration) -> String {
        "\(configuration.mqtt.topicPrefix)/\(configuration.site)/\(device)/state"
    }

    /// Sets the state topics by device slot after a reload (before the board grows to the new slots); the retained
    /// state of a device no longer configured is cleared, so subscribers do not see it online for ever.
    public func replaceStateTopics(devices: [String], configuration: GatewayConfiguration) {
        let configured = Set(configuration.devices.map(\.id))
        let topics = devices.map { configured.contains($0) ? Self.stateTopic(of: $0, in: configuration) : nil }
        let removed = stateTopics.withLock { old -> [String] in
            defer { old = topics }
            return old.indices.compactMap { index in
                old[index].flatMap { index >= topics.count || topics[index] == nil ? $0 : nil }
            }
        }
        let active = Set(topics.compactMap { $0 })
        pendingClears.withLock { clears in
            clears = (clears + removed).filter { !active.contains($0) }
        }
        wakeBell.ring()
        roomBell.ring()
    }

    /// Each configured device's retained state with `online: false`: published by a clean stop.
    public func finalStates() -> [(topic: String, payload: String)] {
        statesFinal.store(true, ordering: .sequentiallyConsistent)
        let topics = stateTopics.withLock { $0 }
        return board.offlineStates().compactMap { slot, state in
            Int(slot) < topics.count ? topics[Int(slot)].map { ($0, state.serialized) } : nil
        }
    }

    /// Starts the publishing thread and collects PUBACKs.
    public func start() {
        mqtt.setAcknowledgementHandler { [weak self] seq, window in self?.pubackArrived(seq, window: window) }
        mqtt.setRefusalHandler { [weak self] seq, reason in self?.refusalArrived(seq, reason: reason) }
        // Without it the publisher would see a new connection (or a lost one) only at its next look, up to 50 ms on.
        mqtt.setConnectionHandler { [wakeBell, roomBell] _ in
            wakeBell.ring()
            roomBell.ring()
        }
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
                if connected {
                    seenStates = []  // the broker may have lost retained states: send them all again
                    journal.handoff.resume()
                } else {
                    // What is committed while the broker is away waits in the journal, not in memory; it is read back.
                    journal.handoff.suspend()
                }
            }
            if connected {
                clearRemovedStates()
                publishStates()
                publishEvents()
            }
            // With no room in the window a new commit changes nothing: sleep where only PUBACKs (and stop) ring.
            let bell = mayReadBatch(mqtt.window) ? wakeBell : roomBell
            _ = bell.wait(timeout: .milliseconds(Self.markIntervalMillis)) {
                // Cleared after announcing the sleep and before the last look: a PUBACK after this rings again.
                rung.store(false, ordering: .sequentiallyConsistent)
                return stage.isStopping
                    || (connected && (hasUnsent || cursor < journal.committedThrough) && mayReadBatch(mqtt.window))
            }
        }
    }

    /// Whether the in-flight window has room for a journal read: with events in flight, only once a quarter of
    /// it is free. `run` sleeps until this holds, so a PUBACK that frees one slot does not start a read.
    func mayReadBatch(_ window: MQTTPublisher.Window) -> Bool {
        window.available > 0 && (window.available >= batchThreshold || window.inflight == 0)
    }

    /// Hands journalled events to the MQTT client in journal order while its in-flight window has room: the events
    /// right after `cursor` from the writer's in-memory hand-off when it has them, otherwise read back from the
    /// journal (after a restart, an outage, an overflow of the hand-off, or with `ACCESSGW_JOURNAL_READBACK=1`).
    /// Either way only committed events, in journal order, each once per run.
    func publishEvents() {
        while true {
            let window = mqtt.window
            guard mayReadBatch(window) else { return }
            let slots = min(window.available, 500)
            // Read before looking anywhere: every event up to it is committed and visible to a journal read.
            let committed = journal.committedThrough
            guard cursor < committed else {
                hasUnsent = false
                return
            }
            let offered: Int, sent: Int
            var readBack = false
            switch journal.handoff.take(after: cursor, limit: slots) {
            case let .events(handed):
                (offered, sent) = (handed.count, send(handed))
            case .readBack:
                readBack = true
                do {
                    let stored = try journal.unpublishedPayloads(afterJournalSeq: cursor, limit: slots)
                    (offered, sent) = (stored.count, send(stored))
                } catch {
                    logger.error("cannot read unpublished events from the journal: \(error)")
                    return
                }
            }
            if sent > 0 {
                mqtt.wakeNetworkThread()  // once per batch, not once per event
                (readBack ? fromJournal : fromMemory).increment(by: sent)
                (readBack ? sentFromJournal : sentFromMemory).wrappingIncrement(by: sent, ordering: .relaxed)
            }
            if sent < offered {
                hasUnsent = true
                return
            }
            // A short read saw every unpublished event up to `committed`: the rest there were published before
            // (an earlier run), so the cursor moves past them instead of reading them again.
            if readBack && offered < slots { cursor = max(cursor, committed) }
            hasUnsent = cursor < journal.committedThrough
        }
    }

    /// Hands `events` to the MQTT client in order until it refuses one (window full, disconnected); returns how many
    /// it took. The network thread is woken by the caller, once for the batch.
    private func send<Event: PublishableEvent>(_ events: [Event]) -> Int {
        var sent = 0
        for event in events {
            guard mqtt.publish(topic: event.topic, payload: event.payload, journalSeq: event.journalSeq, wake: false) else { break }
            cursor = event.journalSeq
            sent += 1
        }
        return sent
    }

    func clearRemovedStates() {
        let clears = pendingClears.withLock { $0 }
        guard !clears.isEmpty else { return }
        let cleared = clears.filter { mqtt.publishState(topic: $0, payload: "") }
        pendingClears.withLock { $0.removeAll { cleared.contains($0) } }
    }

    func publishStates() {
        guard !statesFinal.load(ordering: .sequentiallyConsistent) else { return }
        let topics = stateTopics.withLock { $0 }
        for (slot, state) in board.changes(since: &seenStates) where Int(slot) < topics.count {
            guard let topic = topics[Int(slot)] else { continue }
            if !mqtt.publishState(topic: topic, payload: state.serialized) {
                seenStates[Int(slot)] = 0  // try again on the next round
            }
        }
    }

    /// Runs on libmosquitto's network thread for each PUBACK: wakes the publisher only when it has something to
    /// do, a batch of PUBACKs to mark or room for a journal read, not once per message.
    func pubackArrived(_ seq: Int64, window: MQTTPublisher.Window) {
        let pending = acknowledged.withLock { all -> Int in
            all.append(seq)
            return all.count
        }
        if pending >= Self.markBatch || mayReadBatch(window), !rung.exchange(true, ordering: .sequentiallyConsistent) {
            roomBell.ring()
            wakeBell.ring()
        }
    }

    /// Runs on libmosquitto's network thread for a refused publication: its slot is free again, so the queue
    /// moves on at once; the refusal is journalled with the next batch of PUBACKs.
    func refusalArrived(_ seq: Int64, reason: Int32) {
        refused.withLock { $0.append((seq, reason)) }
        roomBell.ring()
        wakeBell.ring()
    }

    /// Marks acknowledged events published, one transaction per batch of PUBACKs (every 50 ms or 2048 acks). While the
    /// writer holds the journal the batch waits for the next round instead (see `markBatchMax`), so the publisher does
    /// not stall on the writer's fsync with room in its window; a mark lost to a crash only means a resend, same id.
    func recordAcknowledgements(force: Bool = false) {
        let now = monotonicMillis()
        let seqs = acknowledged.withLock { all -> [Int64] in
            guard force || all.count >= Self.markBatch || now - lastMarked >= Self.markIntervalMillis else { return [] }
            defer { all.removeAll(keepingCapacity: true) }
            return all
        }
        let refusals = refused.withLock { all in
            defer { all.removeAll(keepingCapacity: true) }
            return all
        }
        if !refusals.isEmpty {
            do { try journal.markRefused(refusals) } catch {
                logger.error("cannot record \(refusals.count) refused event(s); the next run sends them again: \(error)")
            }
        }
        guard !seqs.isEmpty else { return }
        let mayWait = force || seqs.count >= Self.markBatchMax || now - lastMarked >= Self.markWaitAfterMillis
        do {
            if mayWait {
                _ = try journal.markPublished(seqs)
            } else if try journal.markPublishedUnlessBusy(seqs) == nil {
                acknowledged.withLock { $0.insert(contentsOf: seqs, at: 0) }
                return
            }
        } catch {
            logger.error("cannot mark \(seqs.count) event(s) published; they will be sent again: \(error)")
        }
        lastMarked = now
    }
}

/// What `EventPublisher.send` needs of an event, from the writer's hand-off or read back from the journal.
protocol PublishableEvent {
    var journalSeq: Int64 { get }
    var topic: String { get }
    var payload: String { get }
}

extension CommittedHandoff.Event: PublishableEvent {}
