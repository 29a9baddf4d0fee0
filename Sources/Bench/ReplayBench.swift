import AccessModel
import Foundation
import Gateway
import Logging
import MQTTPublisher
import RequestAuthority
import Simulators
import Synchronization

/// `accessgw bench --replay` (issue 10, SPEC 4.2 "live events keep priority"): live latency with and without a
/// replay running, measured the same way in one run.
///
/// One device holds `history` events, drained to the broker first. Then `liveDevices` devices record at a steady
/// `liveRate` in total for the whole run, while the bench alternates `rounds` times between a *baseline* window
/// (`baseline` seconds, nothing else happening) and a *replay* window (from a signed replay request of the whole
/// history to its `done` reply). Each live event counts in the window its device `time` falls into; its latency
/// is its arrival at the subscriber minus that time (millisecond resolution, device clock = host clock). The
/// windows of each kind are pooled, and p99 during replay is compared with baseline p99 + 20 % (the issue's
/// target). Figures are printed, never asserted.
public enum ReplayBench {
    public struct Options: Sendable {
        public var history = 10_000
        public var liveDevices = 8
        /// Total live events/s over all live devices, throughout the run.
        public var liveRate = 200.0
        public var poll = "20ms"
        /// Seconds of each baseline window.
        public var baseline = 6.0
        public var rounds = 3
        public var maxRate = 2000
        public var maxInflight = 100
        public init() {}
    }

    public struct Window: Codable, Sendable {
        public var kind: String
        public var seconds: Double
        public var samples: Int
        public var p50Millis: Int64?
        public var p99Millis: Int64?
        public var maxMillis: Int64?
    }

    public struct Result: Codable, Sendable {
        public var history: Int
        public var liveDevices: Int
        public var liveRate: Double
        public var poll: String
        public var maxRate: Int
        /// Replayed events that arrived, per round, and how long each replay took.
        public var replayed: [Int]
        public var replaySeconds: [Double]
        public var windows: [Window]
        public var baseline: Window
        public var duringReplay: Window
        /// Baseline p99 × 1.2.
        public var targetMillis: Double?
        /// Rounds whose replay window's p99 is within its own baseline window's p99 + 20 %: load from outside the
        /// bench comes in bursts that land in either kind of window, a replay that slows live events in every one.
        public var roundsWithinTarget: Int
        /// `/proc/loadavg` (1, 5, 15 minutes) at the start and at the end: what else the machine was doing.
        public var loadAverage: [String]
    }

    static func loadAverage() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "").split(separator: " ").prefix(3).joined(separator: " ")
    }

    public static func run(_ options: Options, logger: Logger) async throws -> Result {
        let loadAtStart = loadAverage()
        let directory = try makeRunDirectory("accessgw-bench-replay")
        defer { try? FileManager.default.removeItem(at: directory) }
        let broker = try BenchBroker(directory: directory)
        defer { broker.stop() }
        // Replies and replayed events come under the issuer's reply tree (SPEC 4.2), which the live subscriber leaves out.
        let live = try BenchSubscriber(port: broker.port, prefix: "bench", filter: "bench/bench-site/+/event/#")
        let replayedEvents = try BenchSubscriber(port: broker.port, prefix: "bench/bench-site/reply/bench")

        // The history is spread over 10 devices on 2 buses so that it drains in seconds (3 records per read).
        let historyDevices = (0..<10).map { index in
            let device = SimulatedDevice(kind: .faceDoor, unit: UInt8(index / 2 + 1), capacity: options.history / 10 + 100, seed: UInt64(index + 100))
            device.fillBacklog(options.history / 10, codes: [16])  // door.opened: every one a device event the subscriber counts
            return device
        }
        let history = historyDevices.count * (options.history / 10)
        let liveRatePerDevice = options.liveRate / Double(options.liveDevices)
        let seconds = Double(options.rounds) * (options.baseline + Double(options.history) / Double(options.maxRate) * 2) + 30
        let liveDevices = (0..<options.liveDevices).map {
            SimulatedDevice(kind: DeviceKind.allCases[$0 % DeviceKind.allCases.count], unit: UInt8($0 + 1),
                            capacity: max(1000, Int(liveRatePerDevice * seconds) + 100), seed: UInt64($0 + 2))
        }
        let historyServers = (0..<2).map { bus in
            ModbusTCPServer(host: "127.0.0.1", port: 0, devices: historyDevices.enumerated().filter { $0.offset % 2 == bus }.map(\.element),
                            logger: logger)
        }
        let liveServer = ModbusTCPServer(host: "127.0.0.1", port: 0, devices: liveDevices, logger: logger)
        let servers = historyServers + [liveServer]
        defer { servers.forEach { $0.stop() } }
        for server in servers { try server.start() }

        let issuer = try BenchIssuer(directory: directory, id: "bench", permissions: "[replay]")
        let gateway = try BenchGateway(
            directory: directory, brokerPort: broker.port, maxInflight: options.maxInflight, poll: options.poll,
            buses: servers.enumerated().map { .init(id: "b\($0.offset)", endpoint: "tcp: { host: 127.0.0.1, port: \($0.element.port) }") },
            devices: historyDevices.indices.map { .init(id: "h\($0)", profile: "face-door", bus: "b\($0 % 2)", unit: $0 / 2 + 1) }
                + liveDevices.enumerated().map { .init(id: "l\($0.offset)", profile: $0.element.kind.name, bus: "b2", unit: $0.offset + 1) },
            extraYAML: issuer.yaml + "\nreplay:\n  max_rate: \(options.maxRate)/s", logger: logger)
        try gateway.runtime.start()
        let client: MQTTPublisher
        do { client = try issuer.connect(port: broker.port, logger: logger) } catch {
            await gateway.runtime.stop()
            throw error
        }
        var outcome = Swift.Result<Result, any Error> {
            try drive(options, history: history, historyDevices: historyDevices, liveDevices: liveDevices, live: live, replayed: replayedEvents,
                      issuer: issuer, client: client, logger: logger)
        }
        await client.stop(timeout: .seconds(1))
        await gateway.runtime.stop()
        if case var .success(result) = outcome {
            result.loadAverage = [loadAtStart, loadAverage()]
            outcome = .success(result)
        }
        return try outcome.get()
    }

    static func drive(_ options: Options, history: Int, historyDevices: [SimulatedDevice], liveDevices: [SimulatedDevice], live: BenchSubscriber,
                      replayed: BenchSubscriber, issuer: BenchIssuer, client: MQTTPublisher, logger: Logger) throws -> Result {
        let replies = Mutex<[String: Int64]>([:])
        client.subscribe("bench/bench-site/reply/bench/+") { message in
            guard let reply = try? JSONValue(parsing: message.payload), case let .string(id)? = reply["id"],
                  reply["status"] == .string("done"), case let .int(count)? = reply["count"] else { return }
            replies.withLock { $0[id] = count }
        }
        try client.start()
        let drainDeadline = monotonicSeconds() + 120
        let trace = ProcessInfo.processInfo.environment["BENCH_TRACE"] != nil
        while live.deviceEventCount < history || client.subscriptionsAcknowledged == 0 {
            guard monotonicSeconds() < drainDeadline else {
                throw BenchError("only \(live.deviceEventCount) of \(history) history events arrived within 120 s")
            }
            usleep(10_000)
            if trace, Int(monotonicSeconds() * 100) % 100 == 0 {
                FileHandle.standardError.write(Data("acked \(historyDevices.reduce(0) { $0 + Int($1.logStatus.ack) }), at subscriber \(live.deviceEventCount)\n".utf8))
            }
        }

        let driver = ScenarioDriver(liveDevices.map { ($0, EventScenario(rate: options.liveRate / Double(options.liveDevices))) })
        driver.start()
        defer { driver.stop() }
        usleep(2_000_000)  // warm-up: every live device polled and publishing

        var bounds: [(kind: String, from: Int64, to: Int64)] = []
        var counts: [Int] = []
        var durations: [Double] = []
        let from = Timestamp(millisecondsSinceEpoch: wallMillis() - 86_400_000)
        for round in 1...options.rounds {
            let baselineStart = wallMillis()
            usleep(UInt32(options.baseline * 1_000_000))
            let replayStart = wallMillis()
            bounds.append(("baseline", baselineStart, replayStart))
            let id = "bench-replay-\(round)"
            let topic = "bench/bench-site/gateway/gw-bench/replay"
            var bytes: [UInt8] = []
            JSONValue.object([("id", .string(id)), ("issuer", .string(issuer.id)), ("time", .string(Timestamp.now.rfc3339)),
                              ("ttl_ms", .int(60_000)), ("from", .string(from.rfc3339)),
                              ("devices", .array([.string("h*")]))]).write(to: &bytes)
            let before = replayed.deviceEventCount
            let started = monotonicSeconds()
            client.publish(topic: topic, payload: bytes, properties: RequestProperties(
                responseTopic: "bench/bench-site/reply/bench/r\(round)", correlationData: Array(id.utf8),
                userProperties: [("signature", try RequestAuthority.signature(topic: topic, payload: bytes, key: issuer.key))]))
            let deadline = started + Double(options.history) / Double(options.maxRate) * 10 + 30
            while replies.withLock({ $0[id] }) == nil {
                guard monotonicSeconds() < deadline else { throw BenchError("replay \(round) got no done reply within \(Int(deadline - started)) s") }
                usleep(1000)
            }
            bounds.append(("replay", replayStart, wallMillis()))
            durations.append(monotonicSeconds() - started)
            let arrivalDeadline = monotonicSeconds() + 10
            while replayed.deviceEventCount - before < history, monotonicSeconds() < arrivalDeadline { usleep(1000) }
            counts.append(replayed.deviceEventCount - before)
        }
        // Every live event of the last window at the subscriber.
        let last = bounds.last!.to
        let settle = monotonicSeconds() + 10
        while live.allArrivals.last.map({ $0.deviceMillis < last }) ?? true, monotonicSeconds() < settle { usleep(10_000) }

        let arrivals = live.allArrivals
        func window(_ kind: String, _ ranges: [(kind: String, from: Int64, to: Int64)]) -> Window {
            let latencies = arrivals.filter { arrival in ranges.contains { arrival.deviceMillis >= $0.from && arrival.deviceMillis < $0.to } }
                .map { $0.arrivalMillis - $0.deviceMillis }.sorted()
            let seconds = ranges.reduce(0.0) { $0 + Double($1.to - $1.from) / 1000 }
            return Window(kind: kind, seconds: seconds, samples: latencies.count, p50Millis: quantile(latencies, 0.5),
                          p99Millis: quantile(latencies, 0.99), maxMillis: latencies.last)
        }
        let baseline = window("baseline", bounds.filter { $0.kind == "baseline" })
        let windows = bounds.map { window($0.kind, [$0]) }
        let within = stride(from: 0, to: windows.count - 1, by: 2).filter { index in
            guard let base = windows[index].p99Millis, let replay = windows[index + 1].p99Millis else { return false }
            return Double(replay) <= Double(base) * 1.2
        }.count
        return Result(history: history, liveDevices: options.liveDevices, liveRate: options.liveRate, poll: options.poll,
                      maxRate: options.maxRate, replayed: counts, replaySeconds: durations,
                      windows: windows, baseline: baseline,
                      duringReplay: window("replay", bounds.filter { $0.kind == "replay" }),
                      targetMillis: baseline.p99Millis.map { Double($0) * 1.2 }, roundsWithinTarget: within, loadAverage: [])
    }
}

extension ReplayBench.Result {
    public var text: String {
        func ms(_ value: Int64?) -> String { value.map { "\($0)" } ?? "n/a" }
        func line(_ window: ReplayBench.Window) -> String {
            String(format: "%@ %5.1f s, %5d live events, p50 %@ ms, p99 %@ ms, max %@ ms", window.kind.padding(toLength: 9, withPad: " ", startingAt: 0),
                   window.seconds, window.samples, ms(window.p50Millis), ms(window.p99Millis), ms(window.maxMillis))
        }
        var lines = ["replay: \(history) history events replayed \(replayed.count) times at max_rate \(maxRate)/s while \(liveDevices) devices "
            + String(format: "record %.0f live events/s (poll %@)", liveRate, poll)]
        for (count, seconds) in zip(replayed, replaySeconds) {
            lines.append(String(format: "  replay of %d events: %d arrived, %.2f s (%.0f events/s)", history, count, seconds, Double(count) / seconds))
        }
        lines += windows.map { "  " + line($0) }
        lines.append("  pooled " + line(baseline))
        lines.append("  pooled " + line(duringReplay))
        if let target = targetMillis, let p99 = duringReplay.p99Millis {
            lines.append(String(format: "  live p99 during replay %d ms vs baseline p99 + 20 %% = %.1f ms: %@", p99, target,
                                Double(p99) <= target ? "met" : "NOT met"))
        }
        lines.append("  rounds whose replay p99 is within their own baseline's p99 + 20 %: \(roundsWithinTarget) of \(replayed.count)")
        lines.append("  load average at start / end: \(loadAverage.joined(separator: " / "))")
        return lines.joined(separator: "\n")
    }
}
