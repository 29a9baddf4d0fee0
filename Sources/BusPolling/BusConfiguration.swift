import AccessModel
import DeviceProfiles
import ModbusTransport

/// One bus as configured: how it is reached and its timing.
public struct BusConfiguration: Sendable {
    public var id: String
    public var endpoint: BusEndpoint
    public var timeoutMillis: Int64
    /// Silent time between a response and the next request.
    public var turnaroundMillis: Int64
    /// `run --read-only`: poll and read, but write nothing to the devices (no ack_seq, no clock), for trying
    /// accessgw beside a vendor platform that drains the logs itself.
    public var readOnly = false

    public init(id: String, endpoint: BusEndpoint, timeoutMillis: Int64, turnaroundMillis: Int64) {
        self.id = id
        self.endpoint = endpoint
        self.timeoutMillis = timeoutMillis
        self.turnaroundMillis = turnaroundMillis
    }
}

/// One device as configured on a bus.
public struct DeviceConfiguration: Sendable {
    public var id: String
    /// The device's index in the gateway's device table, carried by every ring entry.
    public var slot: UInt16
    public var unit: UInt8
    public var profile: DeviceProfile
    public var pollMillis: Int64
    public var statePollMillis: Int64
    public var timeSync: Bool
    /// How often the serial is read again while nothing else suggests another controller (SPEC 4 ids): one read
    /// of the identity block's serial registers every 5 minutes, so a controller swapped for one that carries on
    /// with the same boot id and upward seqs gets its own ids within that time.
    public var serialCheckMillis: Int64 = 300_000
    /// Map-2 devices: reads the last image the journal committed, which the first poll is compared with. Called
    /// at that first poll, so a poller started by a reload sees what its predecessor's last entries committed.
    public var loadBaseline: (@Sendable () -> DeviceBaseline?)?
    /// Devices with an event log: reads where the journal stands with the log (its device cursor), which a restarted
    /// reader starts from. Called at the first log read, after the serial is read, so a poller started by a reload
    /// sees what its predecessor committed.
    public var loadLogCursor: (@Sendable () -> LogPosition?)?

    public init(id: String, slot: UInt16, unit: UInt8, profile: DeviceProfile, pollMillis: Int64, statePollMillis: Int64, timeSync: Bool) {
        self.id = id
        self.slot = slot
        self.unit = unit
        self.profile = profile
        self.pollMillis = pollMillis
        self.statePollMillis = statePollMillis
        self.timeSync = timeSync
    }
}

