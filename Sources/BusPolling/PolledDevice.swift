import AccessModel
import DeviceProfiles
import Metrics

/// A device's polling state, confined to its bus poller's thread.
struct PolledDevice {
    let config: DeviceConfiguration
    let link: DeviceLink
    let decoder: RecordDecoder?
    var fifo: EventLogStateMachine?
    /// The serial its log records carry into their ids: read before the first log read and after every boot
    /// change or outage (a replaced controller); nil until read. `.none` when the profile has no serial.
    var serial: DeviceSerial?
    var health = DeviceHealthStateMachine()
    /// Monotonic milliseconds when the device's next turn is due.
    var nextDue: Int64 = 0
    var nextStatePoll: Int64 = 0
    var nextClockCheck: Int64 = 0
    /// The last problem logged, so a failing device logs once per kind of failure, not once per poll.
    var lastLoggedFailure: String?
    /// The last failure of the state block and of the clock logged while the log answers, so each is logged once.
    var stateFailure: String?
    var clockFailure: String?
    /// The device answered an exception to setting its clock: it is not asked again.
    var clockWriteRefused = false
    let up: Gauge
    let metrics: DeviceMetrics

    init(config: DeviceConfiguration, link: DeviceLink, alwaysReadFull: Bool) {
        self.config = config
        self.link = link
        decoder = RecordDecoder(profile: config.profile)
        fifo = config.profile.eventLog.map { EventLogStateMachine(windowRecords: $0.windowRecords, alwaysReadFull: alwaysReadFull) }
        up = Gauge(label: "accessgw_device_up", dimensions: [("device", config.id), ("bus", link.bus)])
        metrics = DeviceMetrics(device: config.id)
    }
}

/// Milliseconds on the monotonic clock, for scheduling.
public func monotonicMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Microseconds on the monotonic clock, for line timing.
func monotonicMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
}

#if canImport(Glibc)
import Glibc
#endif
