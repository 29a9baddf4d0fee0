import AccessModel
import Dispatch
import Foundation
import Journal
import Logging
import Metrics
import MQTTPublisher
import RequestAuthority
import Synchronization

/// Receipts (SPEC 4.3): takes the centre's signed, retained receipts from `{prefix}/{site}/gateway/{gateway}/receipt`,
/// keeps the one applied last in the journal, and publishes again, with its original id, topic and payload, every
/// event published but not confirmed `receipts.resend_after` after its last publication, oldest first.
///
/// Receipts are decided by `RequestAuthority.decideReceipt` (pure) on a queue of their own; re-publication runs on a
/// thread of its own that reads the journal through a read-only connection and is paced like a replay: a re-sent
/// event goes out only while fewer than half of the in-flight window hold live events and at most a quarter hold
/// re-sent ones, never faster than `replay.max_rate`.
public final class ReceiptIntake: Sendable {
    let configuration: GatewayConfiguration
    let authorities: Mutex<RequestAuthority>
    let journal: Journal
    let mqtt: MQTTPublisher
    let logger: Logger
    let queue = DispatchQueue(label: "accessgw.receipts")
    let stage = StageThread(name: "gw-resend")
    let state: Mutex<State>

    struct State {
        var applied: AppliedReceipt?
        var coverage = ReceiptCoverage.none
        /// Wall-clock milliseconds of the last re-publication, by journal seq (the journal keeps the first).
        var resentAt: [Int64: Int64] = [:]
        var summary = UnconfirmedSummary.none
        var ignored: [ReceiptIgnored: Int] = [:]
        var appliedCount = 0
        var resentCount = 0
    }

    let appliedCounter = Counter(label: "accessgw_receipts_applied_total")
    let ignoredCounters = Dictionary(uniqueKeysWithValues: ReceiptIgnored.allCases.map {
        ($0, Counter(label: "accessgw_receipts_ignored_total", dimensions: [("reason", $0.rawValue)]))
    })
    let resentCounter = Counter(label: "accessgw_events_resent_total")
    let unconfirmedGauge = Gauge(label: "accessgw_events_unconfirmed")
    let oldestUnconfirmedGauge = Gauge(label: "accessgw_events_oldest_unconfirmed_age_seconds")
    /// Events read per journal query of the re-publication.
    static let page = 500

    public init(configuration: GatewayConfiguration, journal: Journal, mqtt: MQTTPublisher, logger: Logger) {
        self.configuration = configuration
        authorities = Mutex(configuration.commands.authority)
        self.journal = journal
        self.mqtt = mqtt
        var logger = logger
        logger[metadataKey: "component"] = "receipts"
        self.logger = logger
        var state = State()
        do {
            state.applied = try journal.appliedReceipt()
        } catch {
            logger.error("cannot read the last receipt from the journal; every published event counts as unconfirmed: \(error)")
        }
        if let applied = state.applied, applied.epoch == journal.epoch { state.coverage = applied.coverage }
        self.state = Mutex(state)
        for counter in ignoredCounters.values { counter.increment(by: 0) }
        appliedCounter.increment(by: 0)
        resentCounter.increment(by: 0)
    }

    /// Applies the issuers of a reloaded `commands:` section from the next receipt on.
    public func replace(authority: RequestAuthority) {
        authorities.withLock { $0 = authority }
    }

    public func start() {
        logger.info("""
            taking receipts on \(configuration.receiptTopic) (epoch \(journal.epoch)); unconfirmed events are published \
            again \(configuration.receipts.resendAfterMillis / 1000) s after their last publication
            """)
        mqtt.subscribe(configuration.receiptTopic) { [self] message in queue.async { self.take(message) } }
        stage.start { [self] in run() }
    }

    public func stop() {
        stage.stop()
        queue.sync {}
    }

    /// Decides and applies one receipt message.
    func take(_ message: IncomingMessage) {
        let authority = authorities.withLock { $0 }
        let applied = state.withLock { $0.applied }
        let decision = authority.decideReceipt(
            topic: message.topic, payload: message.payload, signature: message.signature, gateway: configuration.gatewayID,
            epoch: journal.epoch, appliedThrough: applied?.epoch == journal.epoch ? applied?.through : nil)
        switch decision {
        case let .failure(reason):
            ignoredCounters[reason]?.increment()
            state.withLock { $0.ignored[reason, default: 0] += 1 }
            logger.warning("receipt on \(message.topic) ignored: \(reason.rawValue)")
        case let .success(receipt):
            let record = AppliedReceipt(epoch: receipt.epoch, through: receipt.through, ranges: receipt.ranges,
                                        issuer: receipt.issuer, appliedAt: .now)
            do {
                try journal.apply(record)
            } catch {
                logger.error("cannot keep a receipt in the journal; it is applied again when it arrives again: \(error)")
                return
            }
            let coverage = record.coverage
            state.withLock { state in
                state.applied = record
                state.coverage = coverage
                state.resentAt = state.resentAt.filter { !coverage.covers($0.key - journal.gwseqBase) }
                state.appliedCount += 1
            }
            appliedCounter.increment()
            logger.debug("receipt from \(receipt.issuer) applied: through \(receipt.through), \(receipt.ranges.count) range(s)")
        }
    }

    /// What the centre has confirmed so far (nothing for a receipt of another epoch).
    public var coverage: ReceiptCoverage { state.withLock { $0.coverage } }

    /// What `status` shows and the metrics export.
    public var snapshot: JSONValue {
        state.withLock { state in
            .object([
                ("epoch", .string(journal.epoch)),
                ("unconfirmed", .int(Int64(state.summary.count))),
                ("oldest_unconfirmed", state.summary.oldestRecorded.map { .string($0.rfc3339) } ?? .null),
                ("through", state.applied.map { .int($0.through) } ?? .null),
                ("last_receipt", state.applied.map { .string($0.appliedAt.rfc3339) } ?? .null),
                ("applied", .int(Int64(state.appliedCount))),
                ("ignored", .object(ReceiptIgnored.allCases.map { ($0.rawValue, .int(Int64(state.ignored[$0] ?? 0))) })),
                ("resent", .int(Int64(state.resentCount))),
            ])
        }
    }

    /// The re-publication loop: a pass over the unconfirmed events, oldest first, then a pause, while connected.
    func run() {
        let reader: JournalReader
        do {
            reader = try JournalReader(path: configuration.journalPath)
        } catch {
            logger.error("cannot open the journal for re-publication; unconfirmed events are not sent again: \(error)")
            return
        }
        var nextSummary: Int64 = 0
        var cursor: Int64 = 0
        // Message ids of re-sent events still awaiting their PUBACK, across passes: the bound on those in flight.
        var pending: [Int32] = []
        while !stage.isStopping {
            let now = monotonicMillis()
            if now >= nextSummary {
                summarise(reader)
                // Counting a large backlog (a centre away for days) costs; it never takes more than 5% of a core.
                nextSummary = now + max(1000, 20 * (monotonicMillis() - now))
            }
            if mqtt.isConnected {
                do { try resendPass(reader, cursor: &cursor, pending: &pending) } catch {
                    logger.error("cannot read unconfirmed events from the journal: \(error)")
                }
            }
            for _ in 0..<5 where !stage.isStopping { Thread.sleep(forTimeInterval: 0.1) }
        }
    }

    func summarise(_ reader: JournalReader) {
        let coverage = state.withLock { $0.coverage }
        guard let summary = try? reader.unconfirmedSummary(coverage: coverage, base: journal.gwseqBase) else { return }
        state.withLock { $0.summary = summary }
        unconfirmedGauge.record(summary.count)
        oldestUnconfirmedGauge.record(summary.oldestRecorded.map {
            Double(max(0, Timestamp.now.millisecondsSinceEpoch - $0.millisecondsSinceEpoch)) / 1000
        } ?? 0)
    }

    /// Sends again, from the place after `cursor`, every unconfirmed event whose last publication is `resend_after`
    /// old, oldest first, and stops at the first one that is not due yet (acknowledged by the broker, or re-sent,
    /// within `resend_after`: those after it were so later still), to go on from there; past the newest it starts
    /// over from the oldest. So a pass reads one page when nothing is due, however many events wait for a receipt,
    /// and an event is first sent again at most 2 × `resend_after` after its publication.
    func resendPass(_ reader: JournalReader, cursor: inout Int64, pending: inout [Int32]) throws {
        let resendAfter = configuration.receipts.resendAfterMillis
        let interval = Duration.seconds(1) / configuration.replay.maxRate
        let window = max(1, configuration.mqtt.maxInflight / 4)
        let liveShare = max(1, configuration.mqtt.maxInflight / 2)
        var next = ContinuousClock.now
        // Re-sends older than resend_after decide nothing any more (the journal's publication time is older still):
        // forgotten, so this memory holds at most replay.max_rate × resend_after entries.
        let forget = Timestamp.now.millisecondsSinceEpoch - resendAfter
        state.withLock { state in state.resentAt = state.resentAt.filter { $0.value > forget } }
        pass: while !stage.isStopping {
            let coverage = state.withLock { $0.coverage }
            let events = try reader.unconfirmedEvents(coverage: coverage, base: journal.gwseqBase, afterGwseq: cursor, limit: Self.page)
            for event in events {
                let cutoff = Timestamp.now.millisecondsSinceEpoch - resendAfter
                if event.publishedAt.millisecondsSinceEpoch > cutoff { break pass }
                let (covered, resent) = state.withLock { ($0.coverage.covers(event.gwseq), $0.resentAt[event.journalSeq] ?? 0) }
                if covered {
                    cursor = event.gwseq
                    continue
                }
                if resent > cutoff { break pass }
                // Live first: wait while live events hold half the window or re-sent ones their quarter.
                while !stage.isStopping {
                    let link = mqtt.replayWindow(pending: &pending)
                    guard link.connected else { break pass }
                    if pending.count < window, link.liveInflight < liveShare { break }
                    usleep(1000)
                }
                let now = ContinuousClock.now
                if next > now { Thread.sleep(forTimeInterval: Double((next - now) / .microseconds(1)) / 1_000_000) }
                next = max(next, now) + interval
                guard let mid = mqtt.publishReplayed(topic: event.topic, payload: event.payload) else { break pass }
                pending.append(mid)
                cursor = event.gwseq
                state.withLock { state in
                    state.resentAt[event.journalSeq] = Timestamp.now.millisecondsSinceEpoch
                    state.resentCount += 1
                }
                resentCounter.increment()
            }
            if events.count < Self.page {
                cursor = 0
                break
            }
        }
    }
}
