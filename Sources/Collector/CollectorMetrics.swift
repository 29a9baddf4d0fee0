import Metrics
import Synchronization

/// The collector's series (SPEC 4.4 "metrics"), through swift-metrics: `accessgw collect` bootstraps Prometheus.
/// The same numbers are kept as plain counts for `counts` (tests and the shutdown log line).
public final class CollectorMetrics: Sendable {
    public struct Counts: Sendable, Equatable {
        public var stored = 0
        public var duplicates = 0
        public var conflicts = 0
        public var erased = 0
        public var rejected = 0
        public var refused = 0
        public var dropped = 0
        public var batches = 0
        public var receiptsPublished = 0
        public var databaseFailures = 0
    }

    private let counts = Mutex(Counts())
    private let lagGauges = Mutex<[String: Gauge]>([:])

    let stored = Counter(label: "accessgw_collect_events_stored_total")
    let duplicates = Counter(label: "accessgw_collect_duplicates_total")
    let conflicts = Counter(label: "accessgw_collect_conflicts_total")
    let erased = Counter(label: "accessgw_collect_erased_total")
    let refused = Counter(label: "accessgw_collect_refused_total")
    let dropped = Counter(label: "accessgw_collect_dropped_total")
    let batchDuration = Timer(label: "accessgw_collect_batch_duration_seconds")
    let receipts = Counter(label: "accessgw_collect_receipts_published_total")
    let databaseFailures = Counter(label: "accessgw_collect_database_failures_total")
    let databaseUp = Gauge(label: "accessgw_collect_database_up")
    let mqttConnected = Gauge(label: "accessgw_collect_mqtt_connected")
    let pending = Gauge(label: "accessgw_collect_pending_events")

    public init() {}

    public var snapshot: Counts { counts.withLock { $0 } }

    func rejected(reason: String) {
        Counter(label: "accessgw_collect_rejected_total", dimensions: [("reason", reason)]).increment()
        counts.withLock { $0.rejected += 1 }
    }

    func droppedOne() {
        dropped.increment()
        counts.withLock { $0.dropped += 1 }
    }

    func committed(_ outcome: BatchOutcome, duration: Duration) {
        stored.increment(by: outcome.stored)
        duplicates.increment(by: outcome.duplicates)
        conflicts.increment(by: outcome.conflicts.count)
        erased.increment(by: outcome.erased)
        refused.increment(by: outcome.refused.count)
        batchDuration.recordNanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
        counts.withLock {
            $0.stored += outcome.stored
            $0.duplicates += outcome.duplicates
            $0.conflicts += outcome.conflicts.count
            $0.erased += outcome.erased
            $0.refused += outcome.refused.count
            $0.batches += 1
        }
    }

    func databaseFailed() {
        databaseFailures.increment()
        counts.withLock { $0.databaseFailures += 1 }
    }

    func receiptPublished() {
        receipts.increment()
        counts.withLock { $0.receiptsPublished += 1 }
    }

    /// Seconds from the newest stored event's `recordedtime` (the gateway's clock) to its commit, per gateway.
    func lag(site: String, gateway: String, seconds: Double) {
        let key = site + "/" + gateway
        let gauge = lagGauges.withLock { gauges in
            if let gauge = gauges[key] { return gauge }
            let gauge = Gauge(label: "accessgw_collect_lag_seconds", dimensions: [("site", site), ("gateway", gateway)])
            gauges[key] = gauge
            return gauge
        }
        gauge.record(seconds)
    }
}
