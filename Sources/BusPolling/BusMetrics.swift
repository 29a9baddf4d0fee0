import Metrics
import ModbusTransport

/// The bus's Prometheus series: requests by result, request latency, busy time (utilisation), bad records.
struct BusMetrics {
    let ok, timeout, exception, badReply, connection, other: Counter
    let latency: Metrics.Timer
    let busySeconds: FloatingPointCounter
    let badRecords: Counter
    /// Bytes found waiting on the line before a request (trailing bytes of a reply, noise) and discarded.
    let discardedBytes: Counter

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
        badRecords = Counter(label: "accessgw_bad_records_total", dimensions: [("stage", "read"), ("bus", bus)])
        discardedBytes = Counter(label: "accessgw_modbus_discarded_bytes_total", dimensions: [("bus", bus)])
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
