/// The publisher's connection and in-flight bookkeeping as a pure state machine: the shell feeds it what
/// libmosquitto reports and asks it what to do; it does no I/O.
///
/// Reconnect design. libmosquitto 2.0 keeps every unacknowledged QoS 1 message in its own outgoing queue
/// across reconnects, with a clean session as well: `message__reconnect_reset` (lib/messages_mosq.c) puts
/// each back into `mosq_ms_publish_qos1`, and `handle__connack` calls `message__retry_check`, which resends
/// them with DUP set, in their original order and under their original mid, right after the `on_connect`
/// callback. The PUBACK of the resend reaches `on_publish` once for that mid. So:
/// 1. In-flight entries survive a disconnect and keep their mid; a journal seq is reported for marking only
///    when the PUBACK of its mid arrives (with a success reason code), never earlier.
/// 2. The journal is not re-read from the oldest unacknowledged seq on reconnect: that would send every
///    carried-over event a second time. The reader continues after the last seq it handed over.
/// 3. After a reconnect no new journal event is released until every carried-over one is acknowledged: a new
///    publish made from `on_connect` or just after it would reach the broker before the library's resends
///    and break per-device order.
/// 4. If the process dies, the library's queue dies with it but the journal does not: the next run starts
///    from the oldest unpublished seq. A broker that already had a copy gets a duplicate with the same payload
///    and CloudEvents id, which QoS 1 allows; a copy that never arrived is resent, so nothing is lost.
public struct PublisherStateMachine: Sendable {
    public enum Connection: Sendable, Equatable {
        /// Not started, or stopped.
        case disconnected
        /// Started; a connection attempt (or the backoff before the next one) is under way.
        case connecting
        case connected
        /// `stop` was asked for: nothing new is released, in-flight PUBACKs are awaited.
        case stopping
    }

    /// What a CONNACK means for the shell.
    public enum ConnackAction: Sendable, Equatable {
        /// Accepted: publish the retained online status. `carriedOver` journal events from earlier connections
        /// are being resent by libmosquitto; new ones wait until those are acknowledged.
        case publishStatus(carriedOver: Int)
        /// The broker refused us; count it and report it. The library tries again after its backoff.
        case refused
    }

    /// What an ended connection means for the shell.
    public enum DisconnectAction: Sendable, Equatable {
        /// Our own DISCONNECT during `stop`.
        case stopped
        /// An established connection was lost; `heldByLibrary` publications will be resent after reconnecting.
        case connectionLost(heldByLibrary: Int)
        /// A connection attempt failed before a CONNACK.
        case attemptFailed
    }

    /// What a PUBACK means for the shell.
    public enum AckAction: Sendable, Equatable {
        /// The broker has the event: mark `journalSeq` published.
        case markPublished(journalSeq: Int64)
        /// PUBACK reason 0x80 or above: the broker did not take it. The event stays unpublished in the journal
        /// (the next run sends it again); report the error.
        case rejected(journalSeq: Int64?, reasonCode: Int32)
        /// A retained state or status publication, not journal-tracked.
        case stateAcknowledged
        /// A mid we never handed over (or already saw acknowledged): ignore.
        case unknown
    }

    struct Entry: Sendable, Equatable {
        var journalSeq: Int64?
        var generation: Int
    }

    public let maxInflight: Int
    public private(set) var connection: Connection = .disconnected
    /// Whether a connection is established right now, also while stopping.
    public private(set) var linkUp = false
    private var inflight: [Int32: Entry] = [:]
    private var journalInflight = 0
    /// Counts accepted CONNACKs; entries from an earlier generation are being resent by the library.
    private var generation = 0
    private var carriedOver = 0
    /// The last journal seq handed over; journal order means each new one is larger.
    public private(set) var lastJournalSeq: Int64?

    public init(maxInflight: Int) {
        precondition(maxInflight > 0, "max_inflight must be at least 1")
        self.maxInflight = maxInflight
    }

    public var isConnected: Bool { connection == .connected }

    /// Journal events that may be handed over right now without exceeding `maxInflight`.
    public var allowance: Int {
        guard connection == .connected, carriedOver == 0 else { return 0 }
        return max(0, maxInflight - journalInflight)
    }

    /// Whether the event with `journalSeq` may be published now: connected, a free slot, and in journal order.
    public func maySend(journalSeq: Int64) -> Bool {
        allowance > 0 && (lastJournalSeq.map { journalSeq > $0 } ?? true)
    }

    /// Publications (journal events and retained state) waiting for their PUBACK.
    public var inflightCount: Int { inflight.count }
    /// Journal events waiting for their PUBACK.
    public var journalInflightCount: Int { journalInflight }
    /// Carried-over journal events still being resent after a reconnect.
    public var resendingCount: Int { carriedOver }

    /// The oldest journal seq handed over and not yet acknowledged.
    public var oldestUnacknowledgedJournalSeq: Int64? {
        inflight.values.lazy.compactMap(\.journalSeq).min()
    }

    /// Whether `mid` still waits for its PUBACK.
    public func isInflight(mid: Int32) -> Bool { inflight[mid] != nil }

    // MARK: Inputs

    /// The shell asked libmosquitto to connect.
    public mutating func started() {
        if connection == .disconnected { connection = .connecting }
    }

    public mutating func connackReceived(code: Int32) -> ConnackAction {
        guard code == 0 else {
            if connection != .stopping { connection = .connecting }
            return .refused
        }
        generation += 1
        linkUp = true
        carriedOver = inflight.values.reduce(0) { $0 + ($1.journalSeq != nil ? 1 : 0) }
        if connection != .stopping { connection = .connected }
        return .publishStatus(carriedOver: carriedOver)
    }

    /// The connection ended; `rc` 0 means after our own DISCONNECT.
    public mutating func disconnected(rc: Int32) -> DisconnectAction {
        defer { linkUp = false }
        switch connection {
        case .stopping where rc == 0, .disconnected:
            connection = .disconnected
            return .stopped
        case .connected:
            connection = .connecting
            return .connectionLost(heldByLibrary: inflight.count)
        case .stopping:
            return linkUp ? .connectionLost(heldByLibrary: inflight.count) : .attemptFailed
        case .connecting:
            return .attemptFailed
        }
    }

    /// `mid` was handed to libmosquitto for the event with `journalSeq` (nil for retained state).
    public mutating func published(mid: Int32, journalSeq: Int64?) {
        if let old = inflight.updateValue(Entry(journalSeq: journalSeq, generation: generation), forKey: mid) {
            // libmosquitto reused a mid still in our table (a 16-bit counter wrapped past a stuck entry): the
            // old one is gone from the library's queue, so it stays unpublished in the journal.
            if old.journalSeq != nil { journalInflight -= 1 }
            if old.journalSeq != nil, old.generation < generation { carriedOver -= 1 }
        }
        if let journalSeq {
            journalInflight += 1
            lastJournalSeq = journalSeq
        }
    }

    /// A PUBACK for `mid` with its reason code (0 for MQTT 3.1.1).
    public mutating func acknowledged(mid: Int32, reasonCode: Int32) -> AckAction {
        guard let entry = inflight.removeValue(forKey: mid) else { return .unknown }
        if entry.journalSeq != nil {
            journalInflight -= 1
            if entry.generation < generation { carriedOver -= 1 }
        }
        if reasonCode >= 0x80 { return .rejected(journalSeq: entry.journalSeq, reasonCode: reasonCode) }
        guard let journalSeq = entry.journalSeq else { return .stateAcknowledged }
        return .markPublished(journalSeq: journalSeq)
    }

    /// `stop` was asked for: nothing new is released from now on.
    public mutating func stopRequested() {
        connection = connection == .disconnected ? .disconnected : .stopping
    }

    /// The network thread was stopped for good.
    public mutating func stopped() {
        connection = .disconnected
        linkUp = false
    }
}
