import AccessModel
import Logging
import MQTTPublisher
import RequestAuthority
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `accessgw collect`: subscribes on the central broker, commits events in batches into PostgreSQL, and publishes
/// the receipts of what is committed (SPEC 4.4). Three loops share one `EventStore`: messages arrive on
/// libmosquitto's network thread (read and validated there, off the cooperative pool) into the `Inbox`; the batch
/// loop commits them; the receipt loop publishes, at most once a second per gateway epoch, what the database holds.
public final class CollectorService: Service, Sendable {
    private let configuration: Mutex<CollectorConfiguration>
    private let logger: Logger
    public let metrics: CollectorMetrics
    let store: EventStore
    let inbox: Inbox
    /// Gateway epochs whose receipts are due: places committed since their last receipt.
    let dueReceipts = Mutex<Set<ReceiptKey>>([])
    private let subscriber: Mutex<MQTTPublisher?> = Mutex(nil)
    private let signingKey: Mutex<(issuer: String, key: Ed25519PrivateKey)?>
    /// Set when the batch loop last committed or found nothing to do, for /healthz.
    private let lastProgress = Mutex(ContinuousClock.now)
    private let databaseDown = Atomic<Bool>(false)

    /// systemd's notify protocol (`READY=1`, `WATCHDOG=1`, `RELOADING=1`, `STOPPING=1`, `STATUS=…`), given by the caller.
    private let notify: @Sendable (String) -> Void
    private let watchdogInterval: Duration?

    public init(configuration: CollectorConfiguration, logger: Logger, metrics: CollectorMetrics = CollectorMetrics(),
                notify: @escaping @Sendable (String) -> Void = { _ in }, watchdogInterval: Duration? = nil) throws {
        self.notify = notify
        self.watchdogInterval = watchdogInterval
        self.configuration = Mutex(configuration)
        var logger = logger
        logger[metadataKey: "collector"] = "\(configuration.id)"
        self.logger = logger
        self.metrics = metrics
        store = EventStore(settings: configuration.database, logger: logger)
        inbox = Inbox(capacity: configuration.database.maxPending)
        signingKey = Mutex(try configuration.receipts.map { ($0.issuer, try Ed25519PrivateKey(pem: $0.keyPEM)) })
    }

    var current: CollectorConfiguration { configuration.withLock { $0 } }

    /// True while the batch loop makes progress: the database takes batches, or nothing waits.
    public func madeProgress(within seconds: Int) -> Bool {
        inbox.count == 0 || ContinuousClock.now - lastProgress.withLock { $0 } < .seconds(seconds)
    }

    public func run() async throws {
        let configuration = current
        logger.notice("collector starting", metadata: ["collector.summary": "\(configuration.summary)"])
        // Trap SIGHUP before anything can send it: its default action would end the process.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        try startSubscriber(configuration)
        notify("READY=1\nSTATUS=collecting into \(configuration.database)")
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.openDatabase() }
                group.addTask { await self.batchLoop() }
                group.addTask { await self.receiptLoop() }
                group.addTask {
                    for await _ in hangups.cancelOnGracefulShutdown() { await self.reloadFromFile() }
                }
                group.addTask { await self.watchdogLoop() }
                await group.waitForAll()
            }
        } onGracefulShutdown: {
            self.notify("STOPPING=1")
            self.inbox.close()
        }
        // What arrived before the shutdown is committed if the database takes it now; the rest is sent again by
        // its gateways, since no receipt covers it.
        await commitOnce(limit: inbox.count)
        await publishDueReceipts()
        if let subscriber = subscriber.withLock({ $0 }) { await subscriber.stop(timeout: .seconds(2)) }
        await store.disconnect()
        let counts = metrics.snapshot
        logger.notice("collector stopped", metadata: [
            "collect.stored": "\(counts.stored)", "collect.duplicates": "\(counts.duplicates)",
            "collect.conflicts": "\(counts.conflicts)", "collect.receipts": "\(counts.receiptsPublished)",
        ])
    }

    // MARK: MQTT

    private func startSubscriber(_ configuration: CollectorConfiguration) throws {
        let subscriber = try MQTTPublisher(settings: configuration.mqtt, logger: logger)
        let prefix = configuration.topicPrefix
        let metrics = metrics
        subscriber.setConnectionHandler { connected in metrics.mqttConnected.record(connected ? 1 : 0) }
        for filter in configuration.subscriptions {
            subscriber.subscribe(filter) { [weak self] message in self?.received(message, prefix: prefix) }
        }
        try subscriber.start()
        self.subscriber.withLock { $0 = subscriber }
    }

    /// On libmosquitto's network thread: read the message and queue it.
    private func received(_ message: IncomingMessage, prefix: String) {
        let read = CollectedMessage.read(topic: message.topic, payload: message.payload, prefix: prefix)
        if case let .rejected(rejection) = read {
            metrics.rejected(reason: rejection.reason)
            logger.warning("message not stored: \(rejection.message)", metadata: [
                "collect.reason": "\(rejection.reason)", LogKind.key: "\(LogKind.messageRejected)",
            ])
            return
        }
        if !inbox.push(read) {
            metrics.droppedOne()
        }
        metrics.pending.record(inbox.count)
    }

    // MARK: Batches

    /// Connects and migrates the schema at start, so a wrong URL or password shows at once, not with the first
    /// event; the batch loop retries by itself when this fails.
    private func openDatabase() async {
        do {
            let version = try await store.schemaVersion()
            metrics.databaseUp.record(1)
            logger.info("database \(current.database) open, schema version \(version)")
        } catch {
            metrics.databaseUp.record(0)
            databaseDown.store(true, ordering: .relaxed)
            logger.error("\(error); events wait until it is back", metadata: [LogKind.key: "\(LogKind.databaseUnreachable)"])
        }
    }

    private func batchLoop() async {
        var backoff = Backoff()
        while !inbox.isClosed {
            if inbox.count == 0 {
                lastProgress.withLock { $0 = .now }
                await inbox.waitForMessages()
                continue
            }
            let configuration = current
            if inbox.count < configuration.database.batchSize, configuration.database.batchWaitMillis > 0 {
                try? await Task.sleep(for: .milliseconds(configuration.database.batchWaitMillis))
            }
            let messages = inbox.take(configuration.database.batchSize)
            var plan = BatchPlan(messages)
            // A batch the database cannot take now is held and tried again: what is not committed is in no receipt.
            while true {
                if await commit(&plan) { backoff.reset(); break }
                if inbox.isClosed { return }
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    /// Commits what waits, once, without retrying (at shutdown).
    private func commitOnce(limit: Int) async {
        guard limit > 0, !databaseDown.load(ordering: .relaxed) else { return }
        var plan = BatchPlan(inbox.take(limit))
        _ = await commit(&plan)
    }

    /// Commits `plan`; false when the database is unavailable (logged once, then summarised by the log handler).
    private func commit(_ plan: inout BatchPlan) async -> Bool {
        if plan.isEmpty { return true }
        let started = ContinuousClock.now
        let outcome: BatchOutcome
        do {
            outcome = try await store.write(plan)
        } catch {
            metrics.databaseFailed()
            metrics.databaseUp.record(0)
            databaseDown.store(true, ordering: .relaxed)
            if error.kind == .schemaTooNew {
                logger.critical("\(error)")
            } else {
                logger.error("\(error); \(plan.events.count) events held, \(inbox.count) waiting; retrying",
                             metadata: [LogKind.key: "\(LogKind.databaseUnreachable)"])
            }
            return false
        }
        if databaseDown.exchange(false, ordering: .relaxed) {
            logger.notice("database \(current.database) takes batches again", metadata: [LogKind.key: "\(LogKind.databaseReachable)"])
        }
        metrics.databaseUp.record(1)
        metrics.committed(outcome, duration: .now - started)
        metrics.pending.record(inbox.count)
        lastProgress.withLock { $0 = .now }
        for conflict in outcome.conflicts {
            logger.warning("""
                conflict: event \(CollectedMessage.quoted(conflict.id)) is stored from \(conflict.firstSource); another \
                payload with the same id from \(conflict.secondSource) is not stored
                """, metadata: [LogKind.key: "\(LogKind.eventConflict)", "event.id": "\(conflict.id)"])
        }
        for (id, reason) in outcome.refused {
            logger.error("event \(CollectedMessage.quoted(id)) not stored: \(reason)", metadata: [LogKind.key: "\(LogKind.messageRejected)"])
        }
        recordLag(plan.events)
        if !outcome.touched.isEmpty { dueReceipts.withLock { $0.formUnion(outcome.touched) } }
        return true
    }

    private func recordLag(_ events: [EventRow]) {
        var newest: [String: (site: String, gateway: String, millis: Int64)] = [:]
        for row in events {
            guard let gateway = row.gateway, let time = row.recordedTime ?? row.time else { continue }
            let key = row.site + "/" + gateway
            if (newest[key]?.millis ?? .min) < time.millisecondsSinceEpoch { newest[key] = (row.site, gateway, time.millisecondsSinceEpoch) }
        }
        let now = Timestamp.now.millisecondsSinceEpoch
        for (_, value) in newest { metrics.lag(site: value.site, gateway: value.gateway, seconds: Double(now - value.millis) / 1000) }
    }

    // MARK: Receipts

    private func receiptLoop() async {
        while !inbox.isClosed {
            await publishDueReceipts()
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    /// For each gateway epoch with places committed since its last receipt: claim it (at most once a second
    /// across the group), compute its coverage from the database, sign and publish it retained.
    private func publishDueReceipts() async {
        guard let signer = signingKey.withLock({ $0 }), let subscriber = subscriber.withLock({ $0 }), subscriber.isConnected else { return }
        let due = dueReceipts.withLock { $0 }
        let prefix = current.topicPrefix
        for key in due.sorted(by: { ($0.site, $0.gateway, $0.epoch) < ($1.site, $1.gateway, $1.epoch) }) {
            let coverage: ReceiptCoverage?
            do { coverage = try await store.claimReceipt(for: key) } catch {
                // The batch loop says the database is away; receipts wait for it quietly.
                logger.debug("receipt for \(key) not computed: \(error)")
                return
            }
            guard let coverage else { continue }   // published by this group less than a second ago; next round
            do {
                let receipt = try Receipt.signed(prefix: prefix, key: key, coverage: coverage, issuer: signer.issuer, privateKey: signer.key)
                let sent = subscriber.publish(topic: receipt.topic, payload: Array(receipt.payload.utf8),
                                              properties: RequestProperties(userProperties: [("signature", receipt.signature)], retain: true))
                guard sent else { return }
                dueReceipts.withLock { _ = $0.remove(key) }
                metrics.receiptPublished()
                logger.debug("receipt published", metadata: ["receipt.gateway": "\(key)", "receipt.through": "\(coverage.through)",
                                                             "receipt.ranges": "\(coverage.ranges.count)"])
            } catch {
                logger.error("cannot sign the receipt for \(key): \(error)")
                return
            }
        }
    }

    /// WATCHDOG=1 while the batch loop makes progress (the database takes batches, or nothing waits for it);
    /// a database away for long withholds it only when events wait, which is what the watchdog is for.
    private func watchdogLoop() async {
        let interval = watchdogInterval ?? .seconds(1)
        while !inbox.isClosed {
            if madeProgress(within: 120) { notify("WATCHDOG=1") }
            let counts = metrics.snapshot
            notify("STATUS=\(counts.stored) stored, \(counts.duplicates) duplicates, \(counts.conflicts) conflicts, \(inbox.count) waiting\(databaseDown.load(ordering: .relaxed) ? ", database unavailable" : "")")
            try? await Task.sleep(for: interval)
        }
    }

    // MARK: Reload

    /// SIGHUP: re-reads and validates the file; an invalid one is logged problem by problem and changes nothing.
    func reloadFromFile() async {
        notify("RELOADING=1")
        defer { notify("READY=1") }
        let path = current.file
        logger.info("SIGHUP: reloading \(path)")
        let loaded: CollectorConfiguration
        do { loaded = try CollectorConfiguration.load(path: path) } catch {
            for problem in error.problems { logger.error("\(problem)") }
            logger.error("reload refused: \(path) has \(error.problems.count) problem(s); the running configuration stays")
            return
        }
        await reload(loaded)
    }

    /// SIGHUP: the new configuration's batch settings, receipt key and database apply at once; a changed broker
    /// section is logged and applies at the next start (the subscription is the collector's identity in its group).
    public func reload(_ new: CollectorConfiguration) async {
        let old = current
        do {
            let key = try new.receipts.map { ($0.issuer, try Ed25519PrivateKey(pem: $0.keyPEM)) }
            signingKey.withLock { $0 = key }
        } catch {
            logger.error("reload: receipts.key_file: \(error); keeping the previous key")
        }
        configuration.withLock {
            var kept = new
            kept.mqtt = old.mqtt
            kept.topicPrefix = old.topicPrefix
            kept.shareGroup = old.shareGroup
            kept.id = old.id
            $0 = kept
        }
        inbox.setCapacity(new.database.maxPending)
        await store.reconfigure(new.database)
        if old.mqtt.description != new.mqtt.description || old.mqtt.password != new.mqtt.password
            || old.topicPrefix != new.topicPrefix || old.shareGroup != new.shareGroup || old.id != new.id {
            logger.warning("reload: collector and mqtt settings changed; they apply when the collector restarts")
        }
        logger.notice("configuration reloaded", metadata: ["collector.summary": "\(new.summary)"])
    }
}

/// Waits between attempts at the database: 0.5 s doubling to 15 s.
struct Backoff {
    private var delay: Duration = .milliseconds(500)
    mutating func next() -> Duration {
        defer { delay = min(delay * 2, .seconds(15)) }
        return delay
    }
    mutating func reset() { delay = .milliseconds(500) }
}
