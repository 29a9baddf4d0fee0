import Metrics
import Synchronization

/// Command outcomes by status and reason, the latency from arrival to outcome, and what the intake shed.
final class CommandMetrics: Sendable {
    let dropped = Counter(label: "accessgw_command_requests_dropped_total")
    let suppressed = Counter(label: "accessgw_command_rejections_unpublished_total")
    let latency = Metrics.Timer(label: "accessgw_command_latency_seconds")
    private let outcomes = Mutex<[String: Counter]>([:])

    func count(status: String, reason: String?, latency duration: Duration) {
        let key = "\(status)/\(reason ?? "")"
        let counter = outcomes.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: "accessgw_commands_total", dimensions: [("status", status), ("reason", reason ?? "")])
            counters[key] = counter
            return counter
        }
        counter.increment()
        let (seconds, attoseconds) = duration.components
        latency.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
