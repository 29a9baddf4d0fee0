import AccessModel
import Atomics
import BusPolling
import DeviceProfiles
import EventRing
import Foundation
import Journal
import Logging
import Metrics
import Synchronization

/// The single consumer of every bus poller's ring: normalises the entries, commits them to the journal in
/// group commits, then tells each device's poller how far it may acknowledge.
public final class JournalWriter: @unchecked Sendable {
    // @unchecked: `metricsByType`, `eventCounters` and the batch buffers are touched only by the writer thread; the rest is
    // immutable after init or Sendable (the tables' mutex, bells, the journal).
    let journal: Journal
    /// Rings and per-slot tables, read once per batch; a reload replaces them between batches.
    let tables: Mutex<WriterTables>
    /// Rung by pollers after pushing; the writer sleeps on it.
    let doorbell: RingDoorbell
    let topicPrefix: String
    /// Loop iterations begun, so a reload can wait until a batch it saw on a ring is committed.
    let iterations = ManagedAtomic<Int>(0)
    /// Rung after each commit, so the publisher looks for new events.
    public let committedBell = RingDoorbell()
    let logger: Logger
    let stage: StageThread
    let progress = ManagedAtomic<Int64>(0)
    var metricsByType: [String: Counter] = [:]
    /// By device slot: the topic and `accessgw_events_total` counter of each event type, made on first use rather
    /// than per event.
    var routes: [SlotRoutes] = []

    /// A slot's routes, for the site and device they were made for (a reload may give the slot another).
    struct SlotRoutes {
        var site: String
        var device: String
        var byType: [String: Route] = [:]
    }

    struct Route {
        let topic: String
        let counter: Counter
    }
    let commitFailures = Counter(label: "accessgw_journal_commit_failures_total")
    /// Consulted before every ack: a journal file deleted or replaced while running ends the daemon first.
    let custody: JournalCustody

    static let maximumBatch = 1024

    public init(journal: Journal, tables: WriterTables, doorbell: RingDoorbell, configuration: GatewayConfiguration, logger: Logger) {
        self.journal = journal
        custody = JournalCustody(journal: journal, logger: logger)
        self.tables = Mutex(tables)
        self.doorbell = doorbell
        stage = StageThread(name: "gw-writer", wake: { doorbell.ring() })
        topicPrefix = configuration.mqtt.topicPrefix
        self.logger = logger
    }

    /// Takes effect from the next batch on.
    public func replaceTables(_ new: WriterTables) {
        tables.withLock { $0 = new }
        doorbell.ring()
    }

    /// Blocks until everything on `rings` is committed and acknowledged; their producers must be stopped.
    /// Only a reload waits here, for a few milliseconds, so it polls rather than adding a bell to the hot path.
    public func waitUntilCommitted(_ rings: [EventRing<EventRecord>]) {
        while !rings.allSatisfy(\.isEmpty) {
            doorbell.ring()
            usleep(2000)
        }
        // The batch that took the last entries ends before the next iteration begins.
        let seen = iterations.load(ordering: .acquiring)
        while iterations.load(ordering: .acquiring) <= seen {
            doorbell.ring()
            usleep(2000)
        }
    }

    public func start() {
        progress.store(monotonicMillis(), ordering: .relaxed)
        stage.start { [self] in run() }
    }

    /// Stops after committing everything already on the rings (pollers must be stopped first).
    public func stop() {
        stage.stop()
    }

    /// Monotonic milliseconds of the loop's last iteration, for the watchdog.
    public var lastProgressMillis: Int64 { progress.load(ordering: .relaxed) }

    func run() {
        var records: [EventRecord] = []
        records.reserveCapacity(Self.maximumBatch)
        /// Derived entries of a poll whose last entry has not reached the ring yet: held for the next batch, so a
        /// poll's events and its baseline are committed together.
        var unfinished: [EventRecord] = []
        while true {
            iterations.wrappingIncrement(ordering: .releasing)
            progress.store(monotonicMillis(), ordering: .relaxed)
            let stopping = stage.isStopping
            let tables = self.tables.withLock { $0 }
            records.removeAll(keepingCapacity: true)
            records += unfinished
            for ring in tables.rings where records.count < Self.maximumBatch {
                _ = ring.drain(max: Self.maximumBatch - records.count) { records.append($0) }
            }
            unfinished = Self.holdUnfinishedPolls(&records)
            if records.isEmpty {
                if stopping { return }
                _ = doorbell.wait(timeout: .milliseconds(500)) {
                    stage.isStopping || tables.rings.contains { !$0.isEmpty }
                }
                continue
            }
            commit(records, tables)
        }
    }

    /// Takes out of `records` the derived entries of polls whose last entry is not among them, and returns them.
    static func holdUnfinishedPolls(_ records: inout [EventRecord]) -> [EventRecord] {
        var openFrom: [UInt16: Int] = [:]
        for (index, record) in records.enumerated() where record.origin == .derived || record.origin == .baseline {
            if record.boot & RuleEngine.Emission.lastOfPoll != 0 {
                openFrom[record.device] = nil
            } else if openFrom[record.device] == nil {
                openFrom[record.device] = index
            }
        }
        guard !openFrom.isEmpty else { return [] }
        var held: [EventRecord] = [], kept: [EventRecord] = []
        for (index, record) in records.enumerated() {
            if record.origin == .derived, let from = openFrom[record.device], index >= from { held.append(record) } else { kept.append(record) }
        }
        records = kept
        return held
    }

    /// Normalises and commits one batch, retrying until the journal takes it: the devices keep their
    /// unacknowledged events meanwhile, so nothing is lost while the disk misbehaves.
    func commit(_ records: [EventRecord], _ tables: WriterTables) {
        var entries: [JournalEntry] = []
        entries.reserveCapacity(records.count)
        var entryRecords: [EventRecord] = []
        entryRecords.reserveCapacity(records.count)
        var counters: [Counter] = []
        counters.reserveCapacity(records.count)
        var baselines: [String: DeviceBaseline] = [:]
        for record in records {
            if record.boot & RuleEngine.Emission.lastOfPoll != 0, let baseline = tables.normaliser.baseline(of: record) {
                baselines[tables.sources[Int(record.device)].device] = baseline
            }
            if record.origin == .baseline { continue }
            entryRecords.append(record)
            var (event, problems) = tables.normaliser.normalise(record)
            let source = tables.sources[Int(record.device)]
            if event.type == "command.executed" { attributeCommand(&event, device: source.device) }
            for problem in problems {
                count(badRecordOf: source.device)
                logger.warning("bad record: \(problem)", metadata: ["device": "\(source.device)"])
            }
            let lostThrough = record.origin == .eventsLost
                ? LogPosition(serial: record.serial, boot: record.boot, seq: record.second) : nil
            let route = route(slot: Int(record.device), source: source, type: event.type)
            counters.append(route.counter)
            entries.append(JournalEntry(event: event, source: source, topic: route.topic, lostThrough: lostThrough))
        }
        var attempt = 0
        while true {
            do {
                let outcome = try journal.append(entries, baselines: baselines)
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
        custody.check()
        acknowledge(entryRecords, counters, tables)
    }

    /// The topic and counter of events of `type` from the device in `slot`.
    func route(slot: Int, source: EventSource, type: String) -> Route {
        while routes.count <= slot { routes.append(SlotRoutes(site: "", device: "")) }
        if routes[slot].site != source.site || routes[slot].device != source.device {
            routes[slot] = SlotRoutes(site: source.site, device: source.device)
        }
        if let route = routes[slot].byType[type] { return route }
        let route = Route(
            topic: CloudEvent.topic(type: type, source: source, prefix: topicPrefix),
            counter: Counter(label: "accessgw_events_total", dimensions: [("device", source.device), ("type", type)]))
        routes[slot].byType[type] = route
        return route
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
    func acknowledge(_ records: [EventRecord], _ counters: [Counter], _ tables: WriterTables) {
        var marks: [UInt16: (UInt16, UInt32)] = [:]
        for (record, counter) in zip(records, counters) {
            counter.increment()
            guard record.origin == .device else { continue }
            marks[record.device] = (record.boot, record.seq)
        }
        // One ring per bus, after all its devices' marks: the devices of a bus share their poller's bell.
        var rung: Set<ObjectIdentifier> = []
        for (slot, mark) in marks {
            tables.links[Int(slot)].committed(boot: mark.0, seq: mark.1)
        }
        for slot in marks.keys where rung.insert(ObjectIdentifier(tables.pollerBells[Int(slot)])).inserted {
            tables.pollerBells[Int(slot)].ring()
        }
        committedBell.ring()
    }

    /// SPEC 4.1 rule 10: a device's code 8 carries the device command id in `extra`; the event names the request's
    /// `id` and `issuer` instead (the device command id stays in `raw`). A command the gateway did not send keeps
    /// the number.
    func attributeCommand(_ event: inout NormalisedEvent, device: String) {
        guard let index = event.fields.firstIndex(where: { $0.0 == "command_id" }), case let .int(number) = event.fields[index].1,
              let id = UInt32(exactly: number),
              let request = try? journal.commandRequest(device: device, deviceCommandID: id) else { return }
        event.fields[index].1 = .string(request.id)
        event.fields.insert(("issuer", .string(request.issuer)), at: index + 1)
        event.fields.insert(("command", .string(request.command)), at: index + 2)
    }

    func count(badRecordOf device: String) {
        let key = "\(device)\u{0}\u{0}bad"
        if let counter = metricsByType[key] { return counter.increment() }
        let counter = Counter(label: "accessgw_bad_records_total", dimensions: [("stage", "decode"), ("device", device)])
        metricsByType[key] = counter
        counter.increment()
    }
}
