/// One event in the gateway's normalised form, before it becomes a CloudEvent.
public struct NormalisedEvent: Sendable, Equatable {
    /// Where the event's identity comes from: the device's log, or the gateway itself.
    public enum Origin: Sendable, Equatable {
        /// A record of the device's event log, unique per device by (boot, seq).
        case device(boot: UInt16, seq: UInt32)
        /// An event the gateway made (online, offline, events_lost, clock_skew, started).
        case gateway
    }

    /// The record's numbers, kept for audit as `data.raw`.
    public struct RawRecord: Sendable, Equatable {
        public var code: UInt16
        public var point: Int16
        public var direction: UInt8
        public var value: UInt32
        public var extra: UInt32
        public var flags: UInt8

        public init(code: UInt16, point: Int16, direction: UInt8, value: UInt32, extra: UInt32, flags: UInt8) {
            self.code = code
            self.point = point
            self.direction = direction
            self.value = value
            self.extra = extra
            self.flags = flags
        }
    }

    public var device: String
    public var origin: Origin
    /// The device's serial for device records (part of the id, SPEC section 4); `.none` otherwise.
    public var serial: DeviceSerial = .none
    /// The normalised type, such as `access.granted`.
    public var type: String
    public var alarm: Bool
    /// The device's time (UTC); the gateway's for gateway events.
    public var time: Timestamp
    /// The gateway's time when it read the record.
    public var recordedTime: Timestamp
    /// Type-specific fields of `data`, in order.
    public var fields: [(String, JSONValue)]
    public var raw: RawRecord?

    public init(device: String, origin: Origin, type: String, alarm: Bool, time: Timestamp, recordedTime: Timestamp,
                fields: [(String, JSONValue)] = [], raw: RawRecord? = nil) {
        self.device = device
        self.origin = origin
        self.type = type
        self.alarm = alarm
        self.time = time
        self.recordedTime = recordedTime
        self.fields = fields
        self.raw = raw
    }

    public static func == (lhs: NormalisedEvent, rhs: NormalisedEvent) -> Bool {
        lhs.device == rhs.device && lhs.origin == rhs.origin && lhs.serial == rhs.serial && lhs.type == rhs.type && lhs.alarm == rhs.alarm
            && lhs.time == rhs.time && lhs.recordedTime == rhs.recordedTime && lhs.raw == rhs.raw
            && JSONValue.object(lhs.fields) == JSONValue.object(rhs.fields)
    }

    /// The value of one of `fields`.
    public func field(_ name: String) -> JSONValue? {
        fields.first { $0.0 == name }?.1
    }
}
