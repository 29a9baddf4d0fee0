import AccessModel
import Foundation
import Gateway
import Logging
import MQTTPublisher
import RequestAuthority
import Simulators
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `accessgw bench --commands` (SPEC §8, commands): signed commands at a steady rate to devices that all have a
/// backlog, on a baud-paced RS-485 line (9600 and 115200 baud) and on TCP, in one run. The latency is the
/// gateway's own from a request's arrival to the outcome after the device's reply to the write (`latency_ms` of
/// the reply), against the bound SPEC 8 gives for that line.
public enum CommandBench {
    public struct Options: Sendable {
        public var devices = 4
        public var duration = 10.0
        public var rate = 5.0
        public var latencyMillis = 5
        public var backlog = 5000
        public var warmup = 2.0
        public init() {}
    }

    public struct Line: Codable, Sendable {
        public var line: String
        public var commands: Int
        public var written: Int
        public var p50Millis: Double
        public var p99Millis: Double
        public var maxMillis: Double
        public var boundMillis: Double
        /// Where the latency went, stage by stage (`CommandStages`): p50, p99 and max of each.
        public var stages: [Stage] = []
        /// /proc/loadavg's 1-minute figure at the start and the end of this line's run.
        public var loadAverage: [Double] = []
    }

    public struct Stage: Codable, Sendable {
        public var stage: String
        public var p50Millis: Double
        public var p99Millis: Double
        public var maxMillis: Double
    }

    /// The 1-minute load average (/proc/loadavg), or -1 when unreadable.
    static func loadAverage() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8),
              let first = text.split(separator: " ").first, let value = Double(first) else { return -1 }
        return value
    }

    static func stageFigures(_ written: [CommandStages]) -> [Stage] {
        guard let names = written.first?.millis.map(\.stage) else { return [] }
        func figures(_ name: String, _ values: [Double]) -> Stage {
            let sorted = values.sorted()
            func percentile(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
            return Stage(stage: name, p50Millis: percentile(0.5), p99Millis: percentile(0.99), maxMillis: sorted.last!)
        }
        var stages = names.enumerated().map { index, name in figures(name, written.map { $0.millis[index].millis }) }
        stages.append(figures("total", written.map(\.totalMillis)))
        return stages
    }

    public struct Result: Codable, Sendable {
        public var devices: Int
        public var rate: Double
        public var lines: [Line]
    }

    public static func run(_ options: Options, logger: Logger) async throws -> Result {
        var lines: [Line] = []
        for baud in [9600, 115_200] {
            lines.append(try await measure(options, baud: baud, logger: logger))
        }
        lines.append(try await measure(options, baud: nil, logger: logger))
        return Result(devices: options.devices, rate: options.rate, lines: lines)
    }

    /// The SPEC 8 bound: on RTU the longest transaction that may be in flight, the command write itself (function 16,
    /// four registers), the turnaround, plus 20 ms; on TCP 20 ms. The shipped profiles say `ack_with_read`, so the
    /// longest is the function 23 ack-and-read of the event block: a 17-byte request (a plain full read's is 8 bytes,
    /// 9 characters less: 9 ms at 9600 baud) and the 217-byte reply.
    static func boundMillis(baud: Int?, latencyMillis: Int) -> Double {
        guard let baud else { return 20 }
        let line = SerialLineSettings(baud: baud, pace: true)
        let fullRead = RS485Bench.minimumNanoseconds(requestBytes: 17, replyBytes: 217, line: line, latencyMillis: latencyMillis,
                                                     turnaroundMillis: 0)
        let write = RS485Bench.minimumNanoseconds(requestBytes: 17, replyBytes: 8, line: line, latencyMillis: latencyMillis,
                                                  turnaroundMillis: 0)
        return (fullRead + write) / 1e6 + 20
    }

    static func measure(_ options: Options, baud: Int?, logger: Logger) async throws -> Line {
        let directory = try makeRunDirectory("accessgw-bench-commands")
        defer { try? FileManager.default.removeItem(at: directory) }
        let broker = try BenchBroker(directory: directory)
        defer { broker.stop() }
        var devices: [SimulatedDevice] = []
        var configs: [BenchGateway.Device] = []
        for index in 0..<options.devices {
            let device = SimulatedDevice(kind: .plateReader, unit: UInt8(index + 1), capacity: options.backlog + 100,
                                         responseLatencyMilliseconds: options.latencyMillis, seed: UInt64(index + 1))
            device.fillBacklog(options.backlog)
            devices.append(device)
            configs.append(.init(id: "gate-\(index)", profile: "plate-reader", bus: "line", unit: index + 1))
        }
        let bus: BenchGateway.Bus
        var pair: SerialLinePair?
        let stopServer: () -> Void
        if let baud {
            let linePair = try SerialLinePair(directory: directory)
            pair = linePair
            let server = ModbusRTUServer(path: linePair.deviceSide, settings: SerialLineSettings(baud: baud, pace: true),
                                         devices: devices, logger: logger)
            try server.start()
            stopServer = { server.stop() }
            bus = BenchGateway.Bus(id: "line", endpoint: "rtu: { device: \(linePair.gatewaySide), baud: \(baud) }", timeout: "1000ms")
        } else {
            let server = ModbusTCPServer(host: "127.0.0.1", port: 0, devices: devices, logger: logger)
            try server.start()
            stopServer = { server.stop() }
            bus = BenchGateway.Bus(id: "line", endpoint: "tcp: { host: 127.0.0.1, port: \(server.port) }")
        }
        defer {
            stopServer()
            pair?.stop()
        }
        let benchIssuer = try BenchIssuer(directory: directory, id: "bench", permissions: "[open, close]")
        let gateway = try BenchGateway(directory: directory, brokerPort: broker.port, maxInflight: 100, poll: "200ms",
                                       buses: [bus], devices: configs, extraYAML: benchIssuer.yaml, logger: logger)
        try gateway.runtime.start()
        let issuer: MQTTPublisher
        do {
            issuer = try benchIssuer.connect(port: broker.port, logger: logger)
        } catch {
            await gateway.runtime.stop()
            throw error
        }
        let loadBefore = loadAverage()
        var outcome = Swift.Result<Line, any Error> {
            try drive(options, baud: baud, devices: devices, issuer: issuer, key: benchIssuer.key, logger: logger)
        }
        if case var .success(line) = outcome {
            line.stages = stageFigures(gateway.runtime.commandIntake?.recentStages ?? [])
            line.loadAverage = [loadBefore, loadAverage()]
            outcome = .success(line)
        }
        await issuer.stop(timeout: .seconds(1))
        await gateway.runtime.stop()
        return try outcome.get()
    }

    /// Sends the commands at the steady rate and collects the replies' latencies.
    static func drive(_ options: Options, baud: Int?, devices: [SimulatedDevice], issuer: MQTTPublisher, key: Ed25519PrivateKey,
                      logger: Logger) throws -> Line {

        let replies = Mutex<[Int64]>([])
        let written = Mutex<Int>(0)
        issuer.subscribe("bench/bench-site/reply/bench/#") { message in
            guard let reply = try? JSONValue(parsing: message.payload), case let .int(latency)? = reply["latency_ms"] else { return }
            replies.withLock { $0.append(latency) }
            if reply["status"] == .string("written") { written.withLock { $0 += 1 } }
        }
        try issuer.start()
        usleep(UInt32(options.warmup * 1_000_000))
        guard issuer.subscriptionsAcknowledged > 0 else { throw BenchError("the bench's issuer got no SUBACK") }

        let count = Int(options.duration * options.rate)
        let interval = 1.0 / options.rate
        let start = monotonicSeconds()
        for n in 0..<count {
            let due = start + Double(n) * interval
            let wait = due - monotonicSeconds()
            if wait > 0 { usleep(UInt32(wait * 1_000_000)) }
            let device = "gate-\(n % options.devices)"
            let command = n / options.devices % 2 == 0 ? "open" : "close"
            let topic = "bench/bench-site/\(device)/command/\(command)"
            let id = "bench-\(n)"
            let payload = CommandSender.payload(id: id, issuer: "bench", time: .now, ttlMillis: 10_000, args: [], reason: nil)
            let signature = try RequestAuthority.signature(topic: topic, payload: payload, key: key)
            issuer.publish(topic: topic, payload: payload, properties: RequestProperties(
                responseTopic: "bench/bench-site/reply/bench/\(n)", correlationData: Array(id.utf8), userProperties: [("signature", signature)]))
        }
        let waitUntil = monotonicSeconds() + 15
        while replies.withLock({ $0.count }) < count, monotonicSeconds() < waitUntil { usleep(20_000) }
        if devices.contains(where: { $0.logStatus.ack >= $0.logStatus.head }) {
            logger.warning("a device ran out of backlog during the run; raise the backlog")
        }
        let latencies = replies.withLock { $0 }.sorted()
        guard !latencies.isEmpty else { throw BenchError("no command was answered on \(baud.map { "RTU \($0)" } ?? "TCP")") }
        func percentile(_ p: Double) -> Double { Double(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) }
        return Line(line: baud.map { "RS-485 \($0) baud" } ?? "TCP", commands: count, written: written.withLock { $0 },
                    p50Millis: percentile(0.5), p99Millis: percentile(0.99), maxMillis: Double(latencies.last!),
                    boundMillis: boundMillis(baud: baud, latencyMillis: options.latencyMillis))
    }
}

extension CommandBench.Result {
    public var text: String {
        var lines = ["Commands: \(devices) backlogged plate readers per line, \(rate) signed commands/s, arrival at the gateway to the write's reply"]
        for line in self.lines {
            lines.append(String(format: "  %@: %d sent, %d written, p50 %.0f ms, p99 %.0f ms, max %.0f ms (SPEC 8 bound %.0f ms: %@)",
                                line.line, line.commands, line.written, line.p50Millis, line.p99Millis, line.maxMillis, line.boundMillis,
                                line.p99Millis <= line.boundMillis ? "met" : "NOT met"))
            if line.loadAverage.count == 2 {
                lines.append(String(format: "    load average %.2f at the start, %.2f at the end", line.loadAverage[0], line.loadAverage[1]))
            }
            for stage in line.stages {
                lines.append(String(format: "    %-13@ p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms", stage.stage, stage.p50Millis,
                                    stage.p99Millis, stage.maxMillis))
            }
        }
        return lines.joined(separator: "\n")
    }
}
