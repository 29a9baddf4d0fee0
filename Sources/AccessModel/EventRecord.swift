/// The 32 registers of one device event record exactly as read from the bus, kept inline.
public typealias RecordWords = InlineArray<32, UInt16>

/// One entry on the hot path between a bus poller and the journal writer.
///
/// Fixed size and bitwise copyable: no `String`, no references, nothing to count or free per event.
/// A device record carries its raw registers; the gateway's own events (online, offline, loss, clock skew)
/// carry their numbers in `first` and `second`.
public struct EventRecord: BitwiseCopyable, Sendable {
    /// What produced the entry.
    public enum Origin: UInt8, Sendable, BitwiseCopyable {
        case device = 0
        case deviceOnline = 1
        case deviceOffline = 2
        /// `first` = first lost seq, `second` = last lost seq.
        case eventsLost = 3
        /// `first` = device clock minus gateway clock in seconds, as a two's complement Int32.
        case clockSkew = 4
        /// An event a map-2 profile's rules derived from a poll (SPEC 3.5): `first` = rule | variant << 16, `seq` and
        /// `second` the high and low halves of its number, `words` the image it was made from, `boot` bit0 = the
        /// poll's last entry.
        case derived = 5
        /// The image of a poll that changed what the rules follow without emitting anything: only the baseline moves.
        case baseline = 6
    }

    public var origin: Origin
    /// Index of the device in the gateway's device table.
    public var device: UInt16
    /// The device's boot_id when the record was read.
    public var boot: UInt16
    /// The device's serial as read from its identity block at start and after each boot change (device records).
    public var serial: DeviceSerial
    /// The record's seq for device records; 0 otherwise.
    public var seq: UInt32
    public var first: UInt32
    public var second: UInt32
    /// Gateway time the record was read, milliseconds since the Unix epoch.
    public var observedAtMillis: Int64
    /// Raw record registers; meaningful for `.device` only.
    public var words: RecordWords

    public init(origin: Origin, device: UInt16, boot: UInt16, serial: DeviceSerial = .none, seq: UInt32 = 0, first: UInt32 = 0,
                second: UInt32 = 0, observedAtMillis: Int64, words: RecordWords = RecordWords(repeating: 0)) {
        self.origin = origin
        self.device = device
        self.boot = boot
        self.serial = serial
        self.seq = seq
        self.first = first
        self.second = second
        self.observedAtMillis = observedAtMillis
        self.words = words
    }
}
