import AccessModel
import Atomics
import BusPolling
import EventRing
import Foundation
import Journal
import Logging
import Metrics

/// The single consumer of every bus poller's ring: normalises the entries, commits them to the journal in
/// group commits, then tells each device's poller how far it may acknowledge.
public final class JournalWriter: @unchecked Sendable {
    // @unchecked: `metricsByType` and the batch buffers are touched only by the writer thread; the rest is
    // immutable after init or Sendable (rings, bells, links, the journal).
    let journal: Journal
    let rings: [EventRing<EventRecord>]
    /// Rung by pollers after pushing; the writer sleeps on it.
    let doorbell: RingDoorbell
    /// Per device slot: its link (commit marks) and its bus poller's wake bell.
    let links: [DeviceLink]
    let pollerBells: [RingDoorbell]
    let sources: [EventSource]
    let topicPrefix: String
    let normaliser: EventNormaliser
    /// Rung after each commit, so the publisher looks for new events.
    public let committedBell = RingDoorbell()
    let logger: Logger
    let stopRequested = ManagedAtomic(false)
    let finished = DispatchSemaphore(value: 0)
    let progress = ManagedAtomic<Int64>(0)
    var metricsByType: [String: Counter] = [:]
    let badRecords = Counter(label: "accessgw_bad_records_total", dimensions: [("stage", "decode"), ("bus", "all")])
    let commitFailures = Counter(label: "accessgw_journal_commit_failures_total")

    static let maximumBatch = 1024

    public init(journal: Journal, rings: [EventRing<EventRecord>], doorbell: RingDoorbell, links: [DeviceLink],
                pollerBells: [RingDoorbell], configuration: GatewayConfiguration, logger: Logger) {
        self.journal = journal
        self.rings = rings
        self.doorbell = doorbell
        self.links = links
        self.pollerBells = pollerBells
        sources = configuration.devices.indices.map { configuration.source(ofDevice: $0) }
        topicPrefix = configuration.mqtt.topicPrefix
        normaliser = EventNormaliser(configuration: configuration)
        self.logger = logger
    }

    public func start() {
        progress.store(monotonicMillis(), ordering: .relaxed)
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = "journal-writer"
        thread.start()
    }

    /// Stops after committing everything already on the rings (pollers must be stopped first).
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        doorbell.ring()
        finished.wait()
    }

    /// Monotonic milliseconds of the loop's last iteration, for the watchdog.
    public var lastProgressMillis: Int64 { progress.load(ordering: .relaxed) }

    func run() {
        var records: [EventRecord] = []
        records.reserveCapacity(Self.maximumBatch)
        while true {
            progress.store(monotonicMillis(), ordering: .relaxed)
            let stopping = stopRequested.load(ordering: .acquiring)
            records.removeAll(keepingCapacity: true)
            for ring in rings where records.count < Self.maximumBatch {
                _ = ring.drain(max: Self.maximumBatch - records.count) { records.append($0) }
            }
            if records.isEmpty {
                if stopping { return }
                _ = doorbell.wait(timeout: .milliseconds(500)) {
                    stopRequested.load(ordering: .relaxed) || rings.contains { !$0.isEmpty }
                }
                continue
            }
            commit(records)
        }
    }

    /// Normalises and commits one batch, retrying until the journal takes it: the devices keep their
    /// unacknowledged events meanwhile, so nothing is lost while the disk misbehaves.
    func commit(_ records: [EventRecord]) {
        var entries: [JournalEntry] = []
        entries.reserveCapacity(records.count)
        for record in records {
            let (event, problems) = normaliser.normalise(record)
            let source = sources[Int(record.device)]
            for problem in problems {
                badRecords.increment()
                logger.warning("bad record: \(problem)", metadata: ["device": "\(source.device)"])
            }
            entries.append(JournalEntry(event: event, source: source,
                                        topic: CloudEvent.topic(of: event, source: source, prefix: topicPrefix)))
        }
        var attempt = 0
        while true {
            do {
                let outcome = try journal.append(entries)
                if !outcome.duplicates.isEmpty {
                    logger.debug("\(outcome.duplicates.count) record(s) were already journalled (re-read after a restart)")
                }
                break
            } catch {
                commitFailures.increment()
                attempt += 1
                logger.error("journal commit failed (attempt \(attempt)), retrying: \(error)")
                Thread.sleep(forTimeInterval: min(5, 0.1 * Double(attempt)))
            }
        }
        if let crashPoint = Self.crashAfterCommits, records.contains(where: { $0.origin == .device }) {
            crashPoint.commits += 1
            if crashPoint.commits >= crashPoint.limit {
                // Crash-point injection for the delivery tests: die after a commit, before any ack is posted.
                logger.critical("ACCESSGW_CRASH_AFTER_COMMITS reached: exiting between journal commit and device ack")
                _exit(86)
            }
        }
        acknowledge(records, entries)
    }

    /// `ACCESSGW_CRASH_AFTER_COMMITS=N` makes the writer exit right after its Nth commit of device records, before they are
    /// acknowledged: the window the delivery guarantee (SPEC 5.1) is about, hit deterministically by a test.
    final class CrashPoint: @unchecked Sendable {
        // @unchecked: touched only by the writer thread.
        let limit: Int
        var commits = 0
        init(limit: Int) { self.limit = limit }
    }

    static let crashAfterCommits: CrashPoint? = ProcessInfo.processInfo.environment["ACCESSGW_CRASH_AFTER_COMMITS"]
        .flatMap(Int.init).map(CrashPoint.init)

    /// Posts each device's highest committed (boot, seq) and wakes the pollers and the publisher.
    func acknowledge(_ records: [EventRecord], _ entries: [JournalEntry]) {
        var marks: [UInt16: (UInt16, UInt32)] = [:]
        for (record, entry) in zip(records, entries) {
            count(entry)
            guard record.origin == .device else { continue }
            marks[record.device] = (record.boot, record.seq)
        }
        for (slot, mark) in marks {
            links[Int(slot)].committed(boot: mark.0, seq: mark.1)
            pollerBells[Int(slot)].ring()
        }
        committedBell.ring()
    }

    func count(_ entry: JournalEntry) {
        let key = "\(entry.source.device)\u{0}\(entry.event.type)"
        if let counter = metricsByType[key] { return counter.increment() }
        let counter = Counter(label: "accessgw_events_total", dimensions: [("device", entry.source.device), ("type", entry.event.type)])
        metricsByType[key] = counter
        counter.increment()
    }
}
