import Atomics
import BusPolling
import Metrics
import Synchronization

/// Command outcomes by status and reason, the latency from arrival to outcome, and what the intake shed.
final class CommandMetrics: Sendable {
    let dropped = Counter(label: "accessgw_command_requests_dropped_total")
    let suppressed = Counter(label: "accessgw_command_rejections_unpublished_total")
    let latency = Metrics.Timer(label: "accessgw_command_latency_seconds")
    private let outcomes = Mutex<[String: Counter]>([:])
    /// The stages of the most recent written commands (at most `keptStages`), for `bench --commands`.
    private let stages = Mutex<[CommandStages]>([])
    static let keptStages = 10_000

    func record(_ written: CommandStages) {
        stages.withLock { kept in
            if kept.count >= Self.keptStages { kept.removeFirst(kept.count / 2) }
            kept.append(written)
        }
    }

    var recentStages: [CommandStages] { stages.withLock { $0 } }

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

/// Where one written command's latency went (SPEC 8), in monotonic nanoseconds: arrival on the MQTT network
/// thread → the intake's queue → the rules → the journal claim of its id → waiting for the transaction on the
/// line → the line's silence → the write and the device's reply.
public struct CommandStages: Sendable, Equatable {
    public var arrived: UInt64 = 0
    public var decideStarted: UInt64 = 0
    public var claimStarted: UInt64 = 0
    public var claimed: UInt64 = 0
    public var taken: UInt64 = 0
    public var committed: UInt64 = 0
    public var sent: UInt64 = 0
    public var replied: UInt64 = 0

    public init() {}

    mutating func bus(_ stamps: CommandJob.Stamps, replied: UInt64) {
        taken = stamps.taken.load(ordering: .relaxed)
        committed = stamps.committed.load(ordering: .relaxed)
        sent = stamps.sent.load(ordering: .relaxed)
        self.replied = replied
    }

    /// The stages in milliseconds, named, in order; they add up to `total`.
    public var millis: [(stage: String, millis: Double)] {
        func span(_ from: UInt64, _ to: UInt64) -> Double { to >= from && from > 0 ? Double(to - from) / 1e6 : 0 }
        return [("intake queue", span(arrived, decideStarted)), ("rules", span(decideStarted, claimStarted)),
                ("claim", span(claimStarted, claimed)), ("bus wait", span(claimed, taken)), ("commit wait", span(taken, committed)),
                ("silence", span(committed, sent)),
                ("write", span(sent, replied))]
    }

    public var totalMillis: Double { replied >= arrived ? Double(replied - arrived) / 1e6 : 0 }
}
