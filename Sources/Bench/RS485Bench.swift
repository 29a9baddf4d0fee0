import Foundation
import Logging
import Simulators
#if canImport(Glibc)
import Glibc
#endif

/// `accessgw bench --rtu` (SPEC §8, RS-485): a socat pseudo-terminal pair stands in for the line, the RTU simulator
/// paces every reply at the baud rate after the device's latency, every device has a backlog, and the gateway polls
/// the line. The transactions the simulator answered in a window after warm-up are compared with the most the line
/// physically allows for exactly those transactions (their frame bytes, silences, latency and turnaround).
public enum RS485Bench {
    public struct Options: Sendable {
        public var devices = 4
        public var duration = 10.0
        public var baud = 19200
        public var latencyMillis = 5
        public var turnaroundMillis = 0
        public var poll = "200ms"
        /// Backlog per device: enough that no device runs dry during the window.
        public var backlog = 3000
        public var warmup = 2.0
        public init() {}
    }

    public struct Result: Codable, Sendable {
        public var devices: Int
        public var baud: Int
        public var latencyMillis: Int
        public var turnaroundMillis: Int
        public var seconds: Double
        public var transactions: Int
        public var meanRequestBytes: Double
        public var meanReplyBytes: Double
        public var achievedPerSecond: Double
        public var theoreticalPerSecond: Double
        public var ratio: Double
        /// The line's limit for the ideal drain cycle alone: one 106-register read and one ack write per 3 events.
        public var drainCycleTheoreticalPerSecond: Double
        public var eventsPerSecond: Double
        /// Events/s of the ideal drain of 3-record windows: read then ack (16 + 03), and ack-and-read (function 23).
        public var idealDrainEventsPerSecond: Double = 0
        public var idealAckAndReadEventsPerSecond: Double = 0
    }

    /// The line time one transaction needs at the least: request, the 3.5-character silence, the device's latency,
    /// the reply, and before the next request the larger of the silence and the configured turnaround.
    static func minimumNanoseconds(requestBytes: Double, replyBytes: Double, line: SerialLineSettings,
                                   latencyMillis: Int, turnaroundMillis: Int) -> Double {
        let silence = Double(line.timing.frameSilenceNanoseconds)
        return (requestBytes + replyBytes) * Double(line.timing.characterNanoseconds) + silence + Double(latencyMillis) * 1e6
            + max(silence, Double(turnaroundMillis) * 1e6)
    }

    public static func run(_ options: Options, logger: Logger) async throws -> Result {
        let directory = try makeRunDirectory("accessgw-bench-rtu")
        defer { try? FileManager.default.removeItem(at: directory) }
        let pair = try SerialLinePair(directory: directory)
        defer { pair.stop() }
        let gatewaySide = pair.gatewaySide, deviceSide = pair.deviceSide

        let broker = try BenchBroker(directory: directory)
        defer { broker.stop() }
        let line = SerialLineSettings(baud: options.baud, pace: true)
        var devices: [SimulatedDevice] = []
        var deviceConfigs: [BenchGateway.Device] = []
        for index in 0..<options.devices {
            let kind = DeviceKind.allCases[index % DeviceKind.allCases.count]
            let device = SimulatedDevice(kind: kind, unit: UInt8(index + 1), capacity: options.backlog + 100,
                                         responseLatencyMilliseconds: options.latencyMillis, seed: UInt64(index + 1))
            device.fillBacklog(options.backlog)
            devices.append(device)
            deviceConfigs.append(.init(id: "r\(index)", profile: kind.name, bus: "rs485", unit: index + 1))
        }
        let server = ModbusRTUServer(path: deviceSide, settings: line, devices: devices, logger: logger)
        try server.start()
        defer { server.stop() }
        let bus = BenchGateway.Bus(id: "rs485", endpoint: "rtu: { device: \(gatewaySide), baud: \(options.baud) }",
                                   timeout: "1000ms", turnaround: "\(options.turnaroundMillis)ms")
        let gateway = try BenchGateway(directory: directory, brokerPort: broker.port, maxInflight: 100, poll: options.poll,
                                       buses: [bus], devices: deviceConfigs, logger: logger)
        try gateway.runtime.start()
        usleep(UInt32(options.warmup * 1_000_000))
        func acknowledged() -> Int { devices.reduce(0) { $0 + Int($1.logStatus.ack) } }
        let before = server.statistics, ackBefore = acknowledged(), t0 = monotonicSeconds()
        usleep(UInt32(options.duration * 1_000_000))
        let after = server.statistics, ackAfter = acknowledged(), t1 = monotonicSeconds()
        await gateway.runtime.stop()
        if devices.contains(where: { $0.logStatus.ack >= $0.logStatus.head }) {
            logger.warning("a device ran out of backlog during the window; raise the backlog")
        }

        let transactions = after.requests - before.requests
        guard transactions > 0 else { throw BenchError("the gateway made no transaction on the line in \(options.duration) s") }
        let requestBytes = Double(after.requestBytes - before.requestBytes) / Double(transactions)
        let replyBytes = Double(after.replyBytes - before.replyBytes) / Double(transactions)
        let perTransaction = minimumNanoseconds(requestBytes: requestBytes, replyBytes: replyBytes, line: line,
                                                latencyMillis: options.latencyMillis, turnaroundMillis: options.turnaroundMillis)
        // Full read: request 8 bytes, reply 1+1+1+212+2; ack (function 16, 2 registers): request 13, reply 8.
        let cycle = minimumNanoseconds(requestBytes: 8, replyBytes: 217, line: line, latencyMillis: options.latencyMillis,
                                       turnaroundMillis: options.turnaroundMillis)
            + minimumNanoseconds(requestBytes: 13, replyBytes: 8, line: line, latencyMillis: options.latencyMillis,
                                 turnaroundMillis: options.turnaroundMillis)
        // Function 23 (`ack_with_read`): request 1+1+8+1+4+2 = 17 bytes, the same 217-byte reply, one transaction a window.
        let ackAndRead = minimumNanoseconds(requestBytes: 17, replyBytes: 217, line: line, latencyMillis: options.latencyMillis,
                                            turnaroundMillis: options.turnaroundMillis)
        let seconds = t1 - t0
        let achieved = Double(transactions) / seconds
        let theoretical = 1e9 / perTransaction
        return Result(devices: options.devices, baud: options.baud, latencyMillis: options.latencyMillis,
                      turnaroundMillis: options.turnaroundMillis, seconds: seconds, transactions: transactions,
                      meanRequestBytes: requestBytes, meanReplyBytes: replyBytes, achievedPerSecond: achieved,
                      theoreticalPerSecond: theoretical, ratio: achieved / theoretical,
                      drainCycleTheoreticalPerSecond: 2e9 / cycle, eventsPerSecond: Double(ackAfter - ackBefore) / seconds,
                      idealDrainEventsPerSecond: 3e9 / cycle, idealAckAndReadEventsPerSecond: 3e9 / ackAndRead)
    }
}

extension RS485Bench.Result {
    public var text: String {
        """
        RS-485: \(devices) devices on one paced line at \(baud) 8N1, device latency \(latencyMillis) ms, turnaround \(turnaroundMillis) ms
          window: \(String(format: "%.1f", seconds)) s, \(transactions) transactions, mean request \(String(format: "%.1f", meanRequestBytes)) B, mean reply \(String(format: "%.1f", meanReplyBytes)) B
          theoretical for this mix: \(String(format: "%.2f", theoreticalPerSecond)) transactions/s (ideal read+ack drain cycle: \(String(format: "%.2f", drainCycleTheoreticalPerSecond))/s; ideal drain \(String(format: "%.1f", idealDrainEventsPerSecond)) events/s with 16 + 03, \(String(format: "%.1f", idealAckAndReadEventsPerSecond)) with function 23)
          achieved: \(String(format: "%.2f", achievedPerSecond)) transactions/s, \(String(format: "%.1f", eventsPerSecond)) events acknowledged/s
          ratio achieved / theoretical: \(String(format: "%.3f", ratio)) (target >= 0.9)
        """
    }
}
