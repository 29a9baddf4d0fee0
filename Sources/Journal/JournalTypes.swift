import AccessModel

/// One event to journal, with where it came from and the topic it will be published on.
public struct JournalEntry: Sendable {
    public var event: NormalisedEvent
    public var source: EventSource
    public var topic: String
    /// For a `gateway.events_lost`: the controller, boot and last seq it reports lost. The device cursor moves past
    /// them in the same transaction, so a restarted reader neither reports the loss again nor forgets it.
    public var lostThrough: LogPosition?

    public init(event: NormalisedEvent, source: EventSource, topic: String, lostThrough: LogPosition? = nil) {
        self.event = event
        self.source = source
        self.topic = topic
        self.lostThrough = lostThrough
    }
}

/// What one `Journal.append` committed.
public struct AppendOutcome: Sendable, Equatable {
    /// An entry that was stored, with the journal sequence number it got.
    public struct Stored: Sendable, Equatable {
        /// The entry's position in the appended array.
        public var entryIndex: Int
        public var journalSeq: Int64

        public init(entryIndex: Int, journalSeq: Int64) {
            self.entryIndex = entryIndex
            self.journalSeq = journalSeq
        }
    }

    /// The entries stored now, in the order given.
    public var stored: [Stored]
    /// Positions of device records that were already in the journal by (device, boot, seq) and were not stored again.
    public var duplicates: [Int]

    public init(stored: [Stored], duplicates: [Int]) {
        self.stored = stored
        self.duplicates = duplicates
    }
}

/// A journalled event as the publisher, `tail` and `status` read it.
public struct StoredEvent: Sendable, Equatable {
    public var journalSeq: Int64
    public var device: String
    /// The device's boot id and seq for device records; nil for the gateway's own events.
    public var boot: UInt16?
    public var seq: UInt32?
    public var type: String
    public var alarm: Bool
    /// The device's time of the event.
    public var time: Timestamp
    /// The gateway's time when it read the event.
    public var recordedTime: Timestamp
    public var topic: String
    /// The CloudEvent JSON, exactly as published.
    public var payload: String
    /// When the broker's answer (PUBACK) was journalled, nil while pending: the event's own mark when it was
    /// acknowledged out of order or refused, else the time the publication watermark passed it (schema 9: the
    /// watermark's moves within a second share one time, the last, so this is at most a second late).
    public var publishedAt: Timestamp?
    /// The PUBACK reason code (0x80 or above) when the broker refused the event; it is not sent again.
    public var refusedReason: Int32?

    public init(journalSeq: Int64, device: String, boot: UInt16?, seq: UInt32?, type: String, alarm: Bool,
                time: Timestamp, recordedTime: Timestamp, topic: String, payload: String, publishedAt: Timestamp? = nil,
                refusedReason: Int32? = nil) {
        self.journalSeq = journalSeq
        self.device = device
        self.boot = boot
        self.seq = seq
        self.type = type
        self.alarm = alarm
        self.time = time
        self.recordedTime = recordedTime
        self.topic = topic
        self.payload = payload
        self.publishedAt = publishedAt
        self.refusedReason = refusedReason
    }
}

/// What `Journal.enforceRetention` deleted.
public struct RetentionOutcome: Sendable, Equatable {
    /// Published events deleted for being older than the retention period.
    public var expired: Int
    /// Published events deleted, oldest first, because the journal was over its size limit.
    public var publishedDroppedForSize: Int
    /// Unpublished events deleted because the journal was still over its size limit: events the broker never got.
    /// The caller must log this as an error and count it.
    public var unpublishedDropped: Int
    /// The journal's size in use before and after, in bytes (see `Journal.sizeInUse()`).
    public var bytesBefore: Int64
    public var bytesAfter: Int64
    /// With receipts (SPEC 4.3): how many of the deleted events no receipt had confirmed, and the span of their
    /// places (`gwseq`), for `gateway.events_unconfirmed_expired`; 0 and nil without.
    public var unconfirmedDeleted = 0
    public var unconfirmedPlaces: ClosedRange<Int64>?
}

/// Where the journal stands with a device's log: its latest controller (serial) and boot, and the highest seq of
/// that boot it accounts for, stored or reported lost (`gateway.events_lost`). A restarted reader starts from it.
public struct DeviceCursor: Sendable, Equatable {
    public var boot: UInt16
    public var seq: UInt32
    public var updatedAt: Timestamp
    /// The serial the records carry (`DeviceSerial.description`; '' for none, and for cursors older than schema 7).
    public var serial: String

    public init(boot: UInt16, seq: UInt32, updatedAt: Timestamp, serial: String = "") {
        self.boot = boot
        self.seq = seq
        self.updatedAt = updatedAt
        self.serial = serial
    }
}

/// Which events `JournalReader.events(filter:)` returns.
public struct JournalFilter: Sendable, Equatable {
    /// At most this many: the newest ones (returned oldest first), or with `afterJournalSeq` the first ones after it.
    public var limit: Int?
    /// Only these devices; empty means all.
    public var devices: [String]
    /// Only types matching one of these globs, such as `access.*`; empty means all.
    public var types: [NamePattern]
    /// Only events the gateway recorded at or after this time (gateway clock: device clocks may be off).
    public var since: Timestamp?
    /// Only events journalled after this journal sequence number, in order: how `tail -f` follows.
    public var afterJournalSeq: Int64?
    /// Only events the gateway recorded before this time.
    public var until: Timestamp?

    public init(limit: Int? = nil, devices: [String] = [], types: [NamePattern] = [], since: Timestamp? = nil,
                afterJournalSeq: Int64? = nil) {
        self.limit = limit
        self.devices = devices
        self.types = types
        self.since = since
        self.afterJournalSeq = afterJournalSeq
    }
}

/// One device log: a device's controller (serial, '' for none) and boot. Its seqs are read in increasing order.
struct DeviceLogKey: Hashable, Sendable {
    var device: String
    var serial: String
    var boot: UInt16
}
