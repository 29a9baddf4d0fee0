import AccessModel
import DeviceProfiles
import Metrics

/// A device's polling state, confined to its bus poller's thread.
struct PolledDevice {
    let config: DeviceConfiguration
    let link: DeviceLink
    let decoder: RecordDecoder?
    var fifo: EventLogStateMachine?
    /// The serial its log records carry into their ids: read before the first log read, every
    /// `serialCheckMillis`, and after every boot change, outage or log anomaly (a replaced controller); nil until
    /// read. `.none` when the profile has no serial.
    var serial: DeviceSerial?
    /// Monotonic milliseconds when the serial is read again; 0 for "before the next log read".
    var nextSerialCheck: Int64 = 0
    var health = DeviceHealthStateMachine()
    /// Monotonic milliseconds when the device's next turn is due.
    var nextDue: Int64 = 0
    var nextStatePoll: Int64 = 0
    var nextClockCheck: Int64 = 0
    /// The last failure of the state block and of the clock logged while the log answers, so each is logged once.
    var stateFailure: String?
    var clockFailure: String?
    /// The device answered an exception to setting its clock: it is not asked again.
    var clockWriteRefused = false
    let up: Gauge
    let metrics: DeviceMetrics
    /// Map-2 devices: the image of the last poll, which the rules compare the next one with; nil before the first
    /// poll when the journal had no baseline.
    var mapImage: [UInt16]?
    /// Wall-clock milliseconds when `mapImage` was read (or the journal saved it as the baseline); nil when unknown.
    var mapImageMillis: Int64?
    /// What the rules follow in the last image put on the ring: a poll that changes none of it needs no new baseline.
    var journalledFollowed: [Int64?]?
    var baselineLoaded = false
    /// Whether the event log reader was offered the journal's device cursor (once, at the first log read).
    var cursorLoaded = false
    /// Acks are written together with the next read in one function 23 transaction: the profile says the device
    /// takes it (`ack_with_read`), and it has not shown otherwise (then false for good: function 16, then 03).
    var ackWithRead: Bool
    /// The last ack written with function 23, until a function 16 ack: every later read of its boot must show the
    /// device's `ack_seq` at or above it and its window beyond it, or the device did not apply it to its log.
    var ackedWithRead: (boot: UInt16, seq: UInt32)?
    /// Function 23 acks refused (exception 03) since one was last taken; function 16 took the acks in between.
    var ackWithReadRefusals = 0

    init(config: DeviceConfiguration, link: DeviceLink, alwaysReadFull: Bool) {
        self.config = config
        self.link = link
        decoder = RecordDecoder(profile: config.profile)
        ackWithRead = config.profile.eventLog?.ackWithRead ?? false
        fifo = config.profile.eventLog.map { EventLogStateMachine(windowRecords: $0.windowRecords, alwaysReadFull: alwaysReadFull) }
        up = Gauge(label: "accessgw_device_up", dimensions: [("device", config.id), ("bus", link.bus)])
        metrics = DeviceMetrics(device: config.id, hasClock: config.profile.clockRegister != nil)
    }

    /// Takes the journal's baseline when it was saved under this profile's layout and rules.
    mutating func loadBaseline(_ map: PolledMap) {
        baselineLoaded = true
        guard let baseline = config.loadBaseline?(), baseline.fingerprint == map.fingerprint,
              baseline.image.count == min(map.imageWords, 32) else { return }
        mapImage = baseline.image
        mapImageMillis = baseline.savedMillis
        journalledFollowed = RuleEngine.followedValues(map, image: baseline.image)
    }
}
