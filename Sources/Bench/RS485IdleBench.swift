import AccessModel
import Foundation
import Logging
import Simulators
#if canImport(Glibc)
import Glibc
#endif

/// `accessgw bench --rtu --idle` (SPEC §8, RS-485 event latency): face doors on one baud-paced pty line, idle but for
/// occasional events, polled with SPEC 2's example settings; the time from each event's device time to the
/// subscriber, beside the bound the line allows, computed as the efficiency bench computes a transaction's least time.
public enum RS485IdleBench {
    public struct Options: Sendable {
        public var devices = 8
        public var baud = 9600
        public var latencyMillis = 5
        public var turnaroundMillis = 5
        public var timeout = "200ms"
        public var poll = "100ms"
        /// Events per second of each device: 6 a minute.
        public var rate = 0.1
        public var duration = 120.0
        public var warmup = 3.0
        /// Print a trace of the line's first transactions after warm-up (each request, reply and silence).
        public var traceTransactions = 0
        public init() {}
    }

    public struct Result: Codable, Sendable {
        public var devices: Int
        public var baud: Int
        public var latencyMillis: Int
        public var turnaroundMillis: Int
        public var timeout: String
        public var poll: String
        public var events: Int
        public var p50Millis: Int64?
        public var p99Millis: Int64?
        public var maxMillis: Int64?
        /// The line's own time for one header round of every device, with the state reads that fall into it.
        public var roundMillis: Double
        public var boundP50Millis: Double
        public var boundP99Millis: Double
        /// Transactions the line carried per second during the events.
        public var transactionsPerSecond: Double
        public var trace: String?
        /// Every event's latency, sorted: with a few dozen events p99 is the slowest one, so the reader sees the rest.
        public var latenciesMillis: [Int64] = []
    }

    /// The SPEC 8 bound: an event waits for its device's next header read, a uniform share of one round of header
    /// reads of every device (a round stretched by the state reads, `state_poll` 1 s, that fall into it, never
    /// shorter than the poll interval), then the header read that sees it, the window read, and its acknowledgement
    /// with function 23 (which reads the header on).
    static func bound(devices: Int, line: SerialLineSettings, latencyMillis: Int, turnaroundMillis: Int, pollMillis: Double,
                      statePollMillis: Double) -> (round: Double, p50: Double, p99: Double) {
        func transaction(_ request: Double, _ reply: Double) -> Double {
            RS485Bench.minimumNanoseconds(requestBytes: request, replyBytes: reply, line: line, latencyMillis: latencyMillis,
                                          turnaroundMillis: turnaroundMillis) / 1e6
        }
        let header = transaction(8, 25)  // 10 registers
        let state = transaction(8, 25)  // the state block, HR 20–29
        let window = transaction(8, 217)  // 106 registers
        let ackAndHeader = transaction(17, 25)  // function 23: ack_seq written, the header read on
        let n = Double(devices)
        let stateShare = n * state / statePollMillis  // line time per ms spent on state reads
        let round = max(pollMillis, n * header / max(0.05, 1 - stateShare))
        let after = header + window + ackAndHeader
        return (round, 0.5 * round + after, 0.99 * round + after)
    }

    public static func run(_ options: Options, logger: Logger) async throws -> Result {
        let directory = try makeRunDirectory("accessgw-bench-rtu-idle")
        defer { try? FileManager.default.removeItem(at: directory) }
        let pair = try SerialLinePair(directory: directory)
        defer { pair.stop() }
        let broker = try BenchBroker(directory: directory)
        defer { broker.stop() }
        let subscriber = try BenchSubscriber(port: broker.port, prefix: "bench")
        let line = SerialLineSettings(baud: options.baud, pace: true)
        var devices: [SimulatedDevice] = []
        var deviceConfigs: [BenchGateway.Device] = []
        for index in 0..<options.devices {
            let device = SimulatedDevice(kind: .faceDoor, unit: UInt8(index + 1), capacity: 1000,
                                         responseLatencyMilliseconds: options.latencyMillis, seed: UInt64(index + 1))
            devices.append(device)
            deviceConfigs.append(.init(id: "door\(index + 1)", profile: DeviceKind.faceDoor.name, bus: "rs485", unit: index + 1))
        }
        let server = ModbusRTUServer(path: pair.deviceSide, settings: line, devices: devices, logger: logger)
        try server.start()
        defer { server.stop() }
        let bus = BenchGateway.Bus(id: "rs485", endpoint: "rtu: { device: \(pair.gatewaySide), baud: \(options.baud) }",
                                   timeout: options.timeout, turnaround: "\(options.turnaroundMillis)ms")
        let gateway = try BenchGateway(directory: directory, brokerPort: broker.port, maxInflight: 100, poll: options.poll,
                                       buses: [bus], devices: deviceConfigs, logger: logger)
        try gateway.runtime.start()
        usleep(UInt32(options.warmup * 1_000_000))
        let liveStart = wallMillis()
        let before = server.statistics, t0 = monotonicSeconds()
        if options.traceTransactions > 0 { server.startTrace(limit: options.traceTransactions) }
        recordOccasionalEvents(devices, ratePerDevice: options.rate, seconds: options.duration)
        let trace = options.traceTransactions > 0 ? server.traceEntries.text : nil
        let after = server.statistics, t1 = monotonicSeconds()
        let recorded = devices.reduce(0) { $0 + Int($1.logStatus.head) }
        let deadline = monotonicSeconds() + 15
        while subscriber.deviceEventCount < recorded, monotonicSeconds() < deadline { usleep(10_000) }
        let latencies = subscriber.allArrivals.filter { $0.deviceMillis >= liveStart }
            .map { $0.arrivalMillis - $0.deviceMillis }.sorted()
        await gateway.runtime.stop()
        if latencies.count < recorded {
            logger.warning("only \(latencies.count) of \(recorded) events reached the subscriber")
        }
        let pollMillis = Double(DurationText.milliseconds(options.poll) ?? 100)
        let bound = bound(devices: options.devices, line: line, latencyMillis: options.latencyMillis,
                          turnaroundMillis: options.turnaroundMillis, pollMillis: pollMillis, statePollMillis: 1000)
        return Result(devices: options.devices, baud: options.baud, latencyMillis: options.latencyMillis,
                      turnaroundMillis: options.turnaroundMillis, timeout: options.timeout, poll: options.poll,
                      events: latencies.count, p50Millis: quantile(latencies, 0.5), p99Millis: quantile(latencies, 0.99),
                      maxMillis: latencies.last, roundMillis: bound.round, boundP50Millis: bound.p50, boundP99Millis: bound.p99,
                      transactionsPerSecond: Double(after.requests - before.requests) / (t1 - t0), trace: trace,
                      latenciesMillis: latencies)
    }
}

extension RS485IdleBench {
    /// Residents walking through doors: events at random moments (a Poisson process of `ratePerDevice` for each
    /// device), each at a door drawn at random — not ScenarioDriver's fixed rate, which would record an event at every
    /// door at the same instant and measure a burst instead of an idle line.
    static func recordOccasionalEvents(_ devices: [SimulatedDevice], ratePerDevice: Double, seconds: Double) {
        let mix = EventMix(kind: .faceDoor)
        let total = ratePerDevice * Double(devices.count)
        var generator = SeededRandom(seed: 24)
        let end = monotonicSeconds() + seconds
        var next = monotonicSeconds()
        while true {
            next += -log(1 - Double(generator.next() >> 11) / Double(1 << 53)) / total
            guard next < end else { break }
            let wait = next - monotonicSeconds()
            if wait > 0 { usleep(UInt32(wait * 1_000_000)) }
            devices[Int(generator.next() % UInt64(devices.count))].recordRandom(mix)
        }
        let rest = end - monotonicSeconds()
        if rest > 0 { usleep(UInt32(rest * 1_000_000)) }
    }
}

extension RS485IdleBench.Result {
    public var text: String {
        func ms(_ value: Int64?) -> String { value.map { "\($0) ms" } ?? "n/a" }
        func ratio(_ value: Int64?, _ bound: Double) -> String { value.map { String(format: "%.2f", Double($0) / bound) } ?? "n/a" }
        return """
        RS-485 event latency: \(devices) idle face doors on one paced line at \(baud) 8N1, device latency \(latencyMillis) ms, \
        timeout \(timeout), turnaround \(turnaroundMillis) ms, poll \(poll), state_poll 1s
          \(events) events, device time -> subscriber p50 \(ms(p50Millis)), p99 \(ms(p99Millis)), max \(ms(maxMillis)); \
        line \(String(format: "%.1f", transactionsPerSecond)) transactions/s
          bound (header round \(String(format: "%.0f", roundMillis)) ms with its state reads, + header, window read, ack): \
        p50 \(String(format: "%.0f", boundP50Millis)) ms, p99 \(String(format: "%.0f", boundP99Millis)) ms
          ratio to the bound: p50 \(ratio(p50Millis, boundP50Millis)), p99 \(ratio(p99Millis, boundP99Millis)) (target <= 1.2)
          the slowest: \(latenciesMillis.suffix(6).map(String.init).joined(separator: ", ")) ms; p90 \(ms(quantile(latenciesMillis, 0.9)))
        """ + (trace.map { "\n  line trace from the start of the events (simulator's view; ms; fn 3 at 100 is a header or window read, at 20 the state block):\n" + $0 } ?? "")
    }
}
