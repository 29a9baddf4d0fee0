import DeviceProfiles
/// Many simulated devices in one process: their kinds, units, transports, scenarios and faults.
///
/// Devices with the same TCP host:port share one server; devices with the same RTU device path share one line.
public struct SimulatorConfig: Sendable {
    /// Where a device is served.
    public enum Transport: Sendable, Hashable, CustomStringConvertible {
        case tcp(host: String, port: UInt16)
        case rtu(path: String, settings: SerialLineSettings)

        public var description: String {
            switch self {
            case let .tcp(host, port): "tcp \(host):\(port)"
            case let .rtu(path, settings): "rtu \(path) \(settings)"
            }
        }
    }

    /// One simulated device.
    public struct Device: Sendable {
        public var kind: DeviceKind
        public var unit: UInt8
        public var transport: Transport
        public var serial: String?
        /// major << 16 | minor.
        public var firmware: UInt32 = 1 << 16
        public var capacity: Int = 1000
        /// The log frees records once acknowledged (`frees_acknowledged`): `tail_seq` is `head_seq + 1` when empty.
        public var freesAcknowledged = false
        public var bootID: UInt16 = 1
        public var latencyMilliseconds: Int = 0
        /// How long a face door's `open` command keeps the lock released (`lock_release`).
        public var lockReleaseMilliseconds: Int = 5_000
        public var clockOffsetSeconds: Int64 = 0
        public var clockSynchronised = true
        public var scenario: EventScenario = .idle
        public var faults: DeviceFaults = .none
        /// Reboot once this long after start; nil for never.
        public var rebootAfterMilliseconds: Int?
        /// At start, record `capacity + overflow` events so unread events are overwritten; 0 for none.
        public var overflow: Int = 0
        /// A device without an event log, served from this map-2 profile instead of a map-1 `kind`.
        public var profile: DeviceProfile?
        /// What a map-2 device does over time (passages, faults, swipes, bursts).
        public var actions: [MapAction] = []

        public init(kind: DeviceKind, unit: UInt8 = 1, transport: Transport, capacity: Int = 1000,
                    scenario: EventScenario = .idle, faults: DeviceFaults = .none) {
            self.kind = kind
            self.unit = unit
            self.transport = transport
            self.capacity = capacity
            self.scenario = scenario
            self.faults = faults
        }
    }

    /// Seed of every device's random generator, so a run repeats.
    public var seed: UInt64 = 1
    public var devices: [Device]

    public init(seed: UInt64 = 1, devices: [Device]) {
        self.seed = seed
        self.devices = devices
    }
}
