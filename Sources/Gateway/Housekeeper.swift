import AccessModel
import Atomics
import BusPolling
import EventRing
import Foundation
import Journal
import Logging
import Metrics
import MQTTPublisher
import Synchronization

/// Once a second writes the daemon's live status into the journal database (for `accessgw status`) and
/// updates the journal gauges; every ten minutes enforces retention.
public final class Housekeeper: @unchecked Sendable {
    // @unchecked: `lastRetention` and `lastCounters` are touched only by the housekeeping thread; the rest is Sendable.
    let journal: Journal
    let configuration: GatewayConfiguration
    /// The running devices with their links, in configuration order; a reload replaces them.
    let devices: Mutex<[(device: GatewayConfiguration.Device, link: DeviceLink)]>
    let mqtt: MQTTPublisher
    let logger: Logger
    let stage = StageThread(name: "gw-housekeeper")
    var lastRetention: Int64 = 0
    let pendingGauge = Gauge(label: "accessgw_journal_pending_events")
    let oldestPendingGauge = Gauge(label: "accessgw_journal_oldest_pending_age_seconds")
    let journalBytesGauge = Gauge(label: "accessgw_journal_bytes")
    let connectedGauge = Gauge(label: "accessgw_mqtt_connected")
    let connectionFailures = Counter(label: "accessgw_mqtt_connection_failures_total")
    let rejectedPublications = Counter(label: "accessgw_mqtt_rejected_total")
    let publishedEvents = Counter(label: "accessgw_mqtt_published_total")
    let acknowledgedEvents = Counter(label: "accessgw_mqtt_acknowledged_total")
    /// The publisher's counters at the last tick, to export their growth as Prometheus counters.
    var lastCounters = MQTTPublisherCounters()
    let droppedUnpublished = Counter(label: "accessgw_journal_unpublished_dropped_total")
    /// Receipts (SPEC 4.3) when on: retention reports what it deletes unconfirmed, `status` shows them. Set once by
    /// the runtime before `start`, read only by the housekeeping thread afterwards.
    var receipts: ReceiptIntake?
    let unconfirmedExpired = Counter(label: "accessgw_events_unconfirmed_expired_total")

    public static let statusKey = "status"
    static let retentionIntervalMillis: Int64 = 600_000

    /// The journal file checked every tick, so a deletion is noticed even while no event arrives.
    let custody: JournalCustody?

    /// Rung after journalling an event of its own, so the publisher sends it at once.
    let publisherBell: RingDoorbell?

    public init(journal: Journal, configuration: GatewayConfiguration, links: [DeviceLink], mqtt: MQTTPublisher,
                custody: JournalCustody? = nil, publisherBell: RingDoorbell? = nil, logger: Logger) {
        self.journal = journal
        self.publisherBell = publisherBell
        self.custody = custody
        self.configuration = configuration
        devices = Mutex(Array(zip(configuration.devices, links)))
        self.mqtt = mqtt
        self.logger = logger
    }

    public func replaceDevices(_ running: [(device: GatewayConfiguration.Device, link: DeviceLink)]) {
        devices.withLock { $0 = running }
    }

    public func start() {
        stage.start { [self] in
            while !stage.isStopping {
                tick()
                for _ in 0..<10 where !stage.isStopping { Thread.sleep(forTimeInterval: 0.1) }
            }
            tick(stopping: true)
        }
    }

    public func stop() {
        stage.stop()
    }

    /// `stopping`: the last status of this process, marked so `status` reports the daemon stopped at once.
    func tick(stopping: Bool = false) {
        custody?.check()
        journalErasures()
        let now = monotonicMillis()
        if now - lastRetention >= Self.retentionIntervalMillis || lastRetention == 0 {
            lastRetention = now
            enforceRetention()
        }
        do {
            let pending = try journal.pendingCount()
            let oldest = try journal.oldestPending()
            let bytes = try journal.sizeInUse()
            pendingGauge.record(pending)
            oldestPendingGauge.record(oldest.map { Double(Timestamp.now.millisecondsSinceEpoch - $0.recordedTime.millisecondsSinceEpoch) / 1000 } ?? 0)
            journalBytesGauge.record(bytes)
            connectedGauge.record(mqtt.isConnected ? 1 : 0)
            let counters = mqtt.counters
            connectionFailures.increment(by: max(0, counters.connectionFailures - lastCounters.connectionFailures))
            rejectedPublications.increment(by: max(0, counters.rejected - lastCounters.rejected))
            publishedEvents.increment(by: max(0, counters.published - lastCounters.published))
            acknowledgedEvents.increment(by: max(0, counters.acknowledged - lastCounters.acknowledged))
            lastCounters = counters
            try journal.setState(key: Self.statusKey, value: snapshot(pending: pending, oldest: oldest, bytes: bytes, stopping: stopping).serialized)
        } catch {
            logger.error("cannot record status in the journal: \(error)")
        }
    }

    func snapshot(pending: Int, oldest: StoredEvent?, bytes: Int64, stopping: Bool = false) -> JSONValue {
        func time(_ millis: Int64) -> JSONValue { millis == 0 ? .null : .string(Timestamp(millisecondsSinceEpoch: millis).rfc3339) }
        let devices: [JSONValue] = self.devices.withLock { $0 }.map { device, link in
            .object([
                ("id", .string(device.id)), ("kind", .string(device.profile.kind)), ("bus", .string(device.bus)),
                ("unit", .int(Int64(device.unit))), ("status", .string("\(link.status)")),
                ("last_poll", time(link.lastPoll)), ("last_event", time(link.lastEvent)), ("errors", .int(Int64(link.errors))),
            ])
        }
        let counters = mqtt.counters
        return .object([
            ("gateway", .string(configuration.gatewayID)), ("site", .string(configuration.site)),
            ("version", .string(BuildInfo.version)),
            ("pid", .int(Int64(ProcessInfo.processInfo.processIdentifier))), ("stopped", .bool(stopping)),
            ("read_only", .bool(configuration.readOnly)),
            ("broker", .object([
                ("host", .string("\(configuration.mqtt.host):\(configuration.mqtt.port)")),
                ("connected", .bool(mqtt.isConnected)),
                ("published", .int(Int64(counters.published))), ("acknowledged", .int(Int64(counters.acknowledged))),
                ("last_error", counters.lastError.map { .string($0.description) } ?? .null),
            ])),
            ("journal", .object([
                ("path", .string(configuration.journalPath)), ("bytes", .int(bytes)), ("pending", .int(Int64(pending))),
                ("oldest_pending", oldest.map { .string($0.recordedTime.rfc3339) } ?? .null),
            ])),
            ("devices", .array(devices)),
        ] + (receipts.map { [("receipts", $0.snapshot)] } ?? []))
    }

    /// Turns each `accessgw forget` into a `gateway.data_erased` event (what kind of identifier, how many events;
    /// never the identifier), journalled and published like every other event.
    func journalErasures() {
        fillErasedPlaces()
        do {
            let erasures = try journal.pendingErasures()
            guard !erasures.isEmpty else { return }
            let source = configuration.gatewaySource
            let entries = erasures.map { erasure in
                let event = NormalisedEvent(device: configuration.gatewayID, origin: .gateway, type: "gateway.data_erased", alarm: false,
                                            time: erasure.erasedAt, recordedTime: .now, fields: [
                                                ("identifier", .string(erasure.kind)),
                                                ("events_deleted", .int(Int64(erasure.count))),
                                            ])
                return JournalEntry(event: event, source: source,
                                    topic: CloudEvent.topic(of: event, source: source, prefix: configuration.mqtt.topicPrefix))
            }
            _ = try journal.append(entries)
            try journal.markErasuresJournalled(erasures.map(\.id))
            publisherBell?.ring()
            for erasure in erasures {
                logger.notice("erased \(erasure.count) event(s) of one \(erasure.kind) from the journal (accessgw forget)")
            }
        } catch {
            logger.error("cannot journal an erasure: \(error)")
        }
    }

    /// Fills the places `accessgw forget` emptied with `gateway.erased` (SPEC 4.3) and publishes them: the centre deletes
    /// its copy of each erased event, and its sequence has no hole.
    func fillErasedPlaces() {
        do {
            let filled = try journal.fillErasedPlaces(source: configuration.gatewaySource, prefix: configuration.mqtt.topicPrefix)
            for event in filled where mqtt.publishReplayed(topic: event.topic, payload: event.payload) == nil {
                logger.error("cannot publish gateway.erased for place \(event.journalSeq - journal.gwseqBase) now; with receipts on it is sent again")
            }
            if !filled.isEmpty { logger.notice("published \(filled.count) gateway.erased event(s) in the places of erased events") }
        } catch {
            logger.error("cannot fill the places of erased events: \(error)")
        }
    }

    /// Journals `gateway.events_unconfirmed_expired` (SPEC 4.3): the centre learns that the places `places` it has not
    /// confirmed are gone for good.
    func journalUnconfirmedExpired(count: Int, places: ClosedRange<Int64>) {
        unconfirmedExpired.increment(by: count)
        let source = configuration.gatewaySource
        let event = NormalisedEvent(device: configuration.gatewayID, origin: .gateway, type: "gateway.events_unconfirmed_expired",
                                    alarm: true, time: .now, recordedTime: .now, fields: [
                                        ("count", .int(Int64(count))),
                                        ("from_gwseq", .int(places.lowerBound)),
                                        ("to_gwseq", .int(places.upperBound)),
                                    ])
        do {
            _ = try journal.append([JournalEntry(event: event, source: source,
                                                 topic: CloudEvent.topic(of: event, source: source, prefix: configuration.mqtt.topicPrefix))])
            publisherBell?.ring()
        } catch {
            logger.error("cannot journal gateway.events_unconfirmed_expired for places \(places): \(error)")
        }
        logger.error("""
            retention deleted \(count) event(s) no receipt confirmed (places \(places.lowerBound)-\(places.upperBound)): \
            the centre never confirmed storing them; reported as gateway.events_unconfirmed_expired
            """)
    }

    func enforceRetention() {
        do {
            let outcome = try journal.enforceRetention(maxAge: .milliseconds(configuration.retentionMillis),
                                                       maxBytes: configuration.maxJournalBytes, coverage: receipts?.coverage)
            if let places = outcome.unconfirmedPlaces {
                journalUnconfirmedExpired(count: outcome.unconfirmedDeleted, places: places)
            }
            if outcome.unpublishedDropped > 0 {
                droppedUnpublished.increment(by: outcome.unpublishedDropped)
                logger.error("journal over max_journal_size: dropped \(outcome.unpublishedDropped) unpublished event(s), oldest first")
            }
            if outcome.expired + outcome.publishedDroppedForSize > 0 {
                logger.info("retention removed \(outcome.expired + outcome.publishedDroppedForSize) published event(s)")
            }
        } catch {
            logger.error("retention failed: \(error)")
        }
    }
}
