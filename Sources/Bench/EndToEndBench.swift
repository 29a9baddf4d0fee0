import Foundation
import Logging
import Simulators

/// `accessgw bench` (SPEC §8, end to end): simulated TCP devices → gateway → journal → local mosquitto →
/// subscriber, and in the same run the raw libmosquitto QoS 1 publish rate for the same payload size.
///
/// Two phases: *drain* — every device starts with a backlog, and events/s is the whole backlog over the time from
/// gateway start to the last arrival at the subscriber; *live* — devices record at a steady rate for `duration`
/// and the latency of each event is its arrival time minus its device `time` (millisecond resolution; the
/// simulated device clock is the host clock). Figures are printed, never asserted.
public enum EndToEndBench {
    public struct Options: Sendable {
        public var devices = 30
        public var buses = 3
        /// Total backlog of the drain phase, spread evenly over the devices.
        public var events = 30_000
        /// Seconds of the live (latency) phase.
        public var duration = 10.0
        /// Total events/s recorded during the live phase.
        public var rate = 300.0
        public var poll = "200ms"
        public var maxInflight = 100
        /// Receipts on (SPEC 4.3): the subscriber publishes a signed, retained receipt once a second for what it
        /// received, and the drain lasts until the gateway has applied one covering every event.
        public var receipts = false
        /// With receipts: the subscriber publishes none, so every event stays unconfirmed and is re-sent
        /// `resendAfter` after its publication, during the live phase too (live latency while re-sending).
        public var withholdReceipts = false
        public var resendAfter = "60s"
        public init() {}
    }

    public struct Result: Codable, Sendable {
        public var devices: Int
        public var buses: Int
        public var events: Int
        public var drainSeconds: Double
        public var eventsPerSecond: Double
        public var liveEvents: Int
        public var liveRate: Double
        public var latencyP50Millis: Int64?
        public var latencyP99Millis: Int64?
        public var latencyMaxMillis: Int64?
        public var payloadBytes: Int
        public var rawPublishPerSecond: Double
        public var ratio: Double
        public var maxInflight: Int
        public var poll: String
        /// CPU of the gateway's own threads (`gw-…`) during the drain, per delivered event, in microseconds.
        public var gatewayCPUMicrosPerEvent: Double
        /// The same by stage: gw-writer, gw-publisher, gw-mqtt, gw-poll-* (all bus pollers), gw-housekeeper.
        public var gatewayCPUMicrosPerEventByThread: [String: Double]
        /// CPU of the in-process simulated devices' connection threads (`sim-tcp`) during the drain, per event.
        public var simulatorCPUMicrosPerEvent: Double
        /// Events the publisher took from the writer's in-memory hand-off, and read back from the journal (drain).
        public var handedInMemory: Int
        public var readBack: Int
        /// CPU per event of everything in the drain (this process: gateway, simulators, subscriber; and the broker)
        /// and per message of the raw run, in microseconds. The drain is CPU-bound: with the machine to itself it can
        /// reach at most `cores × 10⁶ / drainCPUMicrosPerEvent` events/s, a figure the neighbours' load moves less
        /// than the wall-clock rates.
        public var drainCPUMicrosPerEvent: Double
        public var rawCPUMicrosPerMessage: Double
        public var drainCPUBoundEventsPerSecond: Double
        /// With receipts: seconds from the gateway's start until a receipt it applied covered every event, the gateway's
        /// CPU (its `gw-` threads) per event until then, receipts applied and events re-sent.
        public var receipts = false
        public var confirmedSeconds: Double?
        public var gatewayCPUMicrosPerConfirmedEvent: Double?
        public var receiptsApplied: Int?
        public var resent: Int?
    }

    public static func run(_ options: Options, logger: Logger) async throws -> Result {
        let directory = try makeRunDirectory("accessgw-bench")
        defer { try? FileManager.default.removeItem(at: directory) }
        let broker = try BenchBroker(directory: directory)
        defer { broker.stop() }
        let subscriber = try BenchSubscriber(port: broker.port, prefix: "bench")

        let perDevice = max(1, options.events / options.devices)
        let liveRatePerDevice = options.rate / Double(options.devices)
        let capacity = max(1000, perDevice + Int(liveRatePerDevice * options.duration * 2) + 100)
        var devices: [SimulatedDevice] = []
        var servers: [ModbusTCPServer] = []
        var busConfigs: [BenchGateway.Bus] = []
        var deviceConfigs: [BenchGateway.Device] = []
        defer { servers.forEach { $0.stop() } }
        for bus in 0..<options.buses {
            var onBus: [SimulatedDevice] = []
            for index in stride(from: bus, to: options.devices, by: options.buses) {
                let kind = DeviceKind.allCases[index % DeviceKind.allCases.count]
                let unit = onBus.count + 1
                let device = SimulatedDevice(kind: kind, unit: UInt8(unit), capacity: capacity, seed: UInt64(index + 1))
                device.fillBacklog(perDevice)
                onBus.append(device)
                deviceConfigs.append(.init(id: "d\(index)", profile: kind.name, bus: "b\(bus)", unit: unit))
            }
            let server = ModbusTCPServer(host: "127.0.0.1", port: 0, devices: onBus, logger: logger)
            try server.start()
            servers.append(server)
            devices += onBus
            busConfigs.append(.init(id: "b\(bus)", endpoint: "tcp: { host: 127.0.0.1, port: \(server.port) }"))
        }
        let total = perDevice * devices.count
        let issuer = try BenchIssuer(directory: directory, id: "bench-centre", permissions: "[receipt]")
        let gateway = try BenchGateway(directory: directory, brokerPort: broker.port, maxInflight: options.maxInflight,
                                       poll: options.poll, buses: busConfigs, devices: deviceConfigs,
                                       extraYAML: options.receipts
                                           ? issuer.yaml + "\nreceipts:\n  enabled: true\n  resend_after: \(options.resendAfter)" : "",
                                       logger: logger)
        var centre: BenchReceipts?
        if options.receipts, !options.withholdReceipts {
            let client = try issuer.connect(port: broker.port, logger: logger)
            try client.start()
            let receipts = BenchReceipts(subscriber: subscriber, issuer: issuer, client: client,
                                         topic: gateway.runtime.configuration.receiptTopic)
            receipts.start(epoch: gateway.runtime.journal.epoch)
            centre = receipts
        }
        defer { centre?.stop() }

        // Drain phase.
        let cpuBefore = GatewayThreadCPU.sample()
        let simulatorCPUBefore = GatewayThreadCPU.sample(prefix: "sim-")
        let benchCPUBefore = BenchCPU.sample(brokerPID: broker.pid)
        let started = monotonicSeconds()
        try gateway.runtime.start()
        let drainDeadline = started + max(60, Double(total) / 200)
        var nextReport = started + 5
        // Read once: the environment is copied into a new dictionary on every access, each millisecond of the drain.
        let trace = ProcessInfo.processInfo.environment["BENCH_TRACE"] != nil
        while subscriber.deviceEventCount < total, monotonicSeconds() < drainDeadline {
            usleep(1000)
            if trace, Int(monotonicSeconds() * 1000) % 100 == 0 {
                let acked = devices.reduce(0) { $0 + Int($1.logStatus.ack) }
                FileHandle.standardError.write(Data(String(format: "%.2f s: acked %d, at subscriber %d\n",
                                                           monotonicSeconds() - started, acked, subscriber.deviceEventCount).utf8))
            }
            if monotonicSeconds() >= nextReport {
                nextReport += 5
                logger.notice("drain: \(subscriber.deviceEventCount) of \(total) events at the subscriber")
            }
        }
        let drained = monotonicSeconds()
        let drainCPU = GatewayThreadCPU.sample().since(cpuBefore)
        let simulatorCPU = GatewayThreadCPU.sample(prefix: "sim-").since(simulatorCPUBefore)
        let drainBenchCPU = BenchCPU.sample(brokerPID: broker.pid) - benchCPUBefore
        // With receipts: on until a receipt the gateway applied covers every place handed out so far.
        var confirmed: (seconds: Double, cpuNanos: UInt64)?
        if let intake = gateway.runtime.receiptIntake, !options.withholdReceipts {
            let newest = try gateway.runtime.journal.latestJournalSeq() - gateway.runtime.journal.gwseqBase
            let deadline = monotonicSeconds() + 30
            while intake.coverage.through < newest, monotonicSeconds() < deadline { usleep(1000) }
            if intake.coverage.through >= newest {
                confirmed = (monotonicSeconds() - started, GatewayThreadCPU.sample().since(cpuBefore).totalNanos)
            }
        }
        let (inMemory, fromJournal) = (gateway.runtime.publisher.sentFromMemory.load(ordering: .relaxed),
                                       gateway.runtime.publisher.sentFromJournal.load(ordering: .relaxed))
        let delivered = subscriber.deviceEventCount
        guard delivered >= total else {
            await gateway.runtime.stop()
            throw BenchError("only \(delivered) of \(total) backlog events arrived within \(Int(drainDeadline - started)) s")
        }

        // Live phase.
        let liveStart = wallMillis()
        let driver = ScenarioDriver(devices.map { ($0, EventScenario(rate: liveRatePerDevice)) })
        driver.start()
        usleep(UInt32(options.duration * 1_000_000))
        driver.stop()
        let recorded = devices.reduce(0) { $0 + Int($1.logStatus.head) }
        let liveDeadline = monotonicSeconds() + 15
        while subscriber.deviceEventCount < recorded, monotonicSeconds() < liveDeadline { usleep(1000) }
        let payloadBytes = subscriber.meanPayloadBytes
        let latencies = subscriber.allArrivals.filter { $0.deviceMillis >= liveStart }
            .map { $0.arrivalMillis - $0.deviceMillis }.sorted()
        await gateway.runtime.stop()

        // Baseline, same broker, same subscriber attached, same payload size and in-flight window.
        let raw = try RawPublisher(port: broker.port, maxInflight: options.maxInflight)
        let rawCount = max(total, 10_000)
        let rawCPUBefore = BenchCPU.sample(brokerPID: broker.pid)
        let rawRate = raw.run(count: rawCount, payloadBytes: payloadBytes,
                              topic: "bench/raw/bench-site/d0/event/access.granted")
        let rawCPU = BenchCPU.sample(brokerPID: broker.pid) - rawCPUBefore
        let resent = (gateway.runtime.receiptIntake?.snapshot["resent"]).flatMap { value -> Int? in
            if case let .int(n) = value { Int(n) } else { nil }
        }
        let applied = (gateway.runtime.receiptIntake?.snapshot["applied"]).flatMap { value -> Int? in
            if case let .int(n) = value { Int(n) } else { nil }
        }
        let drainPerEvent = Double(drainBenchCPU.totalMicros) / Double(total)
        let rawPerMessage = Double(rawCPU.totalMicros) / Double(rawCount)
        let rate = Double(total) / (drained - started)
        var result = Result(devices: devices.count, buses: options.buses, events: total, drainSeconds: drained - started,
                      eventsPerSecond: rate, liveEvents: latencies.count,
                      liveRate: Double(latencies.count) / options.duration,
                      latencyP50Millis: quantile(latencies, 0.5), latencyP99Millis: quantile(latencies, 0.99),
                      latencyMaxMillis: latencies.last, payloadBytes: payloadBytes, rawPublishPerSecond: rawRate,
                      ratio: rate / rawRate, maxInflight: options.maxInflight, poll: options.poll,
                      gatewayCPUMicrosPerEvent: Double(drainCPU.totalNanos) / 1000 / Double(total),
                      gatewayCPUMicrosPerEventByThread: drainCPU.nanosByName.mapValues { Double($0) / 1000 / Double(total) },
                      simulatorCPUMicrosPerEvent: Double(simulatorCPU.totalNanos) / 1000 / Double(total),
                      handedInMemory: inMemory, readBack: fromJournal,
                      drainCPUMicrosPerEvent: drainPerEvent, rawCPUMicrosPerMessage: rawPerMessage,
                      drainCPUBoundEventsPerSecond: Double(ProcessInfo.processInfo.activeProcessorCount) * 1_000_000 / drainPerEvent)
        result.receipts = options.receipts
        result.confirmedSeconds = confirmed?.seconds
        result.gatewayCPUMicrosPerConfirmedEvent = confirmed.map { Double($0.cpuNanos) / 1000 / Double(total) }
        result.receiptsApplied = applied
        result.resent = resent
        return result
    }
}

extension EndToEndBench.Result {
    public var text: String {
        func ms(_ value: Int64?) -> String { value.map { "\($0) ms" } ?? "n/a" }
        let byThread = gatewayCPUMicrosPerEventByThread.sorted { $0.value > $1.value }
            .map { "\($0.key) \(String(format: "%.1f", $0.value))" }.joined(separator: ", ")
        let readBackForced = ProcessInfo.processInfo.environment["ACCESSGW_JOURNAL_READBACK"] == "1" ? " (ACCESSGW_JOURNAL_READBACK=1)" : ""
        return """
        end to end: \(devices) TCP devices on \(buses) buses, poll \(poll), max_inflight \(maxInflight)
          drain:  \(events) backlog events delivered in \(String(format: "%.2f", drainSeconds)) s = \(String(format: "%.0f", eventsPerSecond)) events/s
          live:   \(liveEvents) events at \(String(format: "%.0f", liveRate))/s, device time -> subscriber p50 \(ms(latencyP50Millis)), p99 \(ms(latencyP99Millis)), max \(ms(latencyMaxMillis))
          raw libmosquitto QoS 1 publish, \(payloadBytes)-byte payload: \(String(format: "%.0f", rawPublishPerSecond)) msgs/s
          ratio gateway / raw: \(String(format: "%.2f", ratio)) (target >= 0.8); gateway CPU \(String(format: "%.1f", gatewayCPUMicrosPerEvent)) us per delivered event
          gateway CPU by thread, us/event: \(byThread); simulated devices (sim-tcp, not the gateway's) \(String(format: "%.1f", simulatorCPUMicrosPerEvent))
          CPU (bench process + broker): drain \(String(format: "%.1f", drainCPUMicrosPerEvent)) us per event, at most \(String(format: "%.0f", drainCPUBoundEventsPerSecond)) events/s on \(ProcessInfo.processInfo.activeProcessorCount) cores; raw \(String(format: "%.1f", rawCPUMicrosPerMessage)) us per message
          publisher (drain): \(handedInMemory) events from the in-memory hand-off, \(readBack) read back from the journal\(readBackForced)
        """ + receiptText
    }

    var receiptText: String {
        guard receipts else { return "" }
        let cpu = gatewayCPUMicrosPerConfirmedEvent.map { String(format: "%.1f", $0) } ?? "n/a (not all confirmed within 30 s)"
        return """

          receipts: every event confirmed \(confirmedSeconds.map { String(format: "%.2f", $0) } ?? "n/a") s after the start; gateway CPU \(cpu) us per confirmed event; \(receiptsApplied ?? 0) receipts applied, \(resent ?? 0) events re-sent
        """
    }
}
