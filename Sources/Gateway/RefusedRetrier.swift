import Dispatch
import Foundation
import Journal
import Logging
import Metrics
import MQTTPublisher
import Synchronization

/// Sends the events the broker refused (PUBACK 0x80 or above, e.g. an ACL's 0x87) again, with backoff, so that
/// they go out once the broker's configuration is fixed (issue 19 item 12). An event the broker takes is no
/// longer refused; one it refuses again waits for the next round. Each round sends at most `batch` of them, a
/// quarter of the in-flight window at a time, behind live events; outcomes are counted
/// (`accessgw_mqtt_refused_retries_total{result="delivered"|"refused"}`).
final class RefusedRetrier: Sendable {
    let journal: Journal
    let mqtt: MQTTPublisher
    let logger: Logger
    let queue = DispatchQueue(label: "accessgw.refused-retry")
    let running = Atomic<Bool>(false)
    let state = Mutex(Progress())
    static let batch = 500
    let window: Int

    struct Progress {
        var delay = RefusedRetrier.initialDelay
        /// The last journal seq tried in the current pass over the refused events.
        var cursor: Int64 = 0
    }

    static let initialDelay: Duration = .seconds(2)
    static let maximumDelay: Duration = .seconds(300)

    /// The wait before the next round: back to the start after a round that delivered something (the broker has
    /// changed its mind, the rest may follow soon) or had nothing to send, doubled up to five minutes after one
    /// whose events were all refused again.
    static func nextDelay(after delay: Duration, tried: Int, delivered: Int) -> Duration {
        tried == 0 || delivered > 0 ? initialDelay : min(delay * 2, maximumDelay)
    }

    init(journal: Journal, mqtt: MQTTPublisher, maxInflight: Int, logger: Logger) {
        self.journal = journal
        self.mqtt = mqtt
        window = max(1, maxInflight / 4)
        var logger = logger
        logger[metadataKey: "component"] = "refused-retry"
        self.logger = logger
    }

    func start() {
        running.store(true, ordering: .releasing)
        schedule()
    }

    func stop() { running.store(false, ordering: .releasing) }

    private func schedule() {
        let delay = state.withLock { $0.delay }
        let nanos = Int(delay.components.seconds) * 1_000_000_000 + Int(delay.components.attoseconds / 1_000_000_000)
        queue.asyncAfter(deadline: .now() + .nanoseconds(nanos)) { [self] in
            guard running.load(ordering: .acquiring) else { return }
            let (tried, delivered) = round()
            state.withLock { $0.delay = Self.nextDelay(after: $0.delay, tried: tried, delivered: delivered) }
            schedule()
        }
    }

    /// One round: the next `batch` refused events after the cursor (wrapping to the oldest at the end). Returns how
    /// many were sent and how many of them the broker took.
    func round() -> (tried: Int, delivered: Int) {
        guard mqtt.isConnected else { return (0, 0) }
        let cursor = state.withLock { $0.cursor }
        let events: [RefusedEvent]
        do { events = try journal.refusedEvents(after: cursor, limit: Self.batch) } catch {
            logger.warning("cannot read the refused events: \(error)")
            return (0, 0)
        }
        state.withLock { $0.cursor = events.count == Self.batch ? events.last!.journalSeq : 0 }
        guard !events.isEmpty else { return (0, 0) }
        var delivered: [Int64] = []
        var refusedAgain = 0
        for chunk in stride(from: 0, to: events.count, by: window).map({ events[$0..<min($0 + window, events.count)] }) {
            guard running.load(ordering: .acquiring), mqtt.isConnected else { break }
            var sent: [Int32: Int64] = [:]
            for event in chunk {
                if let mid = mqtt.publishTracked(topic: event.topic, payload: event.payload) { sent[mid] = event.journalSeq }
            }
            let deadline = ContinuousClock.now + .seconds(10)
            var outcomes: [Int32: Int32] = [:]
            while outcomes.count < sent.count, ContinuousClock.now < deadline, running.load(ordering: .acquiring) {
                outcomes.merge(mqtt.takeOutcomes(Array(sent.keys.filter { outcomes[$0] == nil })), uniquingKeysWith: { a, _ in a })
                if outcomes.count < sent.count { usleep(2000) }
            }
            _ = mqtt.takeOutcomes(Array(sent.keys.filter { outcomes[$0] == nil }), abandoning: true)
            for (mid, code) in outcomes {
                if code < 0x80 { delivered.append(sent[mid]!) } else { refusedAgain += 1 }
            }
        }
        do { try journal.clearRefused(delivered) } catch {
            logger.error("cannot record \(delivered.count) refused event(s) as delivered: \(error)")
        }
        Counter(label: "accessgw_mqtt_refused_retries_total", dimensions: [("result", "delivered")]).increment(by: Int64(delivered.count))
        Counter(label: "accessgw_mqtt_refused_retries_total", dimensions: [("result", "refused")]).increment(by: Int64(refusedAgain))
        if !delivered.isEmpty {
            logger.notice("\(delivered.count) event(s) the broker had refused were taken on a retry; \(refusedAgain) refused again")
        }
        return (delivered.count + refusedAgain, delivered.count)
    }
}
