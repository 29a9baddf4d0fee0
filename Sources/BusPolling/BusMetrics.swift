import Metrics
import ModbusTransport

/// The bus's Prometheus series: requests by result, request latency, busy time (utilisation).
struct BusMetrics {
    let ok, timeout, exception, badReply, connection, other: Counter
    let latency: Metrics.Timer
    let busySeconds: FloatingPointCounter
    /// Bytes found waiting on the line before a request (trailing bytes of a reply, noise) and discarded.
    let discardedBytes: Counter
    /// RTU replies that arrived after their request had given up, taken off the line and discarded (SPEC 2).
    let lateReplies: Counter

    init(bus: String) {
        func requests(_ result: String) -> Counter {
            Counter(label: "accessgw_modbus_requests_total", dimensions: [("bus", bus), ("result", result)])
        }
        ok = requests("ok")
        timeout = requests("timeout")
        exception = requests("exception")
        badReply = requests("bad_reply")
        connection = requests("connection")
        other = requests("error")
        latency = Metrics.Timer(label: "accessgw_modbus_request_duration_seconds", dimensions: [("bus", bus)])
        busySeconds = FloatingPointCounter(label: "accessgw_bus_busy_seconds_total", dimensions: [("bus", bus)])
        discardedBytes = Counter(label: "accessgw_modbus_discarded_bytes_total", dimensions: [("bus", bus)])
        lateReplies = Counter(label: "accessgw_modbus_late_replies_total", dimensions: [("bus", bus)])
    }

    func count(_ error: ModbusError?) {
        switch error?.code {
        case nil: ok.increment()
        case .timeout: timeout.increment()
        case .exception: exception.increment()
        case .badReply: badReply.increment()
        case .connection: connection.increment()
        case .system: other.increment()
        }
    }

    func busy(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        latency.recordNanoseconds(Int64(seconds) * 1_000_000_000 + Int64(attoseconds / 1_000_000_000))
        busySeconds.increment(by: Double(seconds) + Double(attoseconds) / 1e18)
    }
}

/// A device's own series, so one flaky device on a shared bus stands out: poll results, the time of its last
/// event (the alert for a terminal that answers polls but stopped logging), lost records, clock offset, bad records.
struct DeviceMetrics {
    let ok, timeout, exception, badReply, connection, other: Counter
    let lastEvent: Gauge
    let eventsLost: Counter
    /// Only for devices with a clock: a device without one has no offset to report, not an offset of 0.
    let clockOffset: Gauge?
    let badRecords: Counter
    let device: String

    init(device: String, hasClock: Bool = true) {
        func polls(_ result: String) -> Counter {
            Counter(label: "accessgw_device_polls_total", dimensions: [("device", device), ("result", result)])
        }
        ok = polls("ok")
        timeout = polls("timeout")
        exception = polls("exception")
        badReply = polls("bad_reply")
        connection = polls("connection")
        other = polls("error")
        lastEvent = Gauge(label: "accessgw_device_last_event_timestamp_seconds", dimensions: [("device", device)])
        eventsLost = Counter(label: "accessgw_device_events_lost_total", dimensions: [("device", device)])
        clockOffset = hasClock ? Gauge(label: "accessgw_device_clock_offset_seconds", dimensions: [("device", device)]) : nil
        badRecords = Counter(label: "accessgw_bad_records_total", dimensions: [("stage", "read"), ("device", device)])
        self.device = device
    }

    /// The device fell back from acking with function 23 to function 16 then 03. Made when it happens (once a device at
    /// most, rarely at all): a series per device made up front costs the scale benchmark's 1000 devices about 1 MiB.
    func ackWithReadFellBack() {
        Counter(label: "accessgw_device_ack_with_read_fallbacks_total", dimensions: [("device", device)]).increment()
    }

    /// One poll's result: nil when it succeeded.
    func poll(_ error: (any Error)?) {
        guard let error else { return ok.increment() }
        switch (error as? ModbusError)?.code {
        case .timeout: timeout.increment()
        case .exception: exception.increment()
        case .badReply: badReply.increment()
        case .connection: connection.increment()
        case .system, nil: other.increment()
        }
    }
}
