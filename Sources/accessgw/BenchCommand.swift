import ArgumentParser
import Bench
import Foundation
import Gateway
import Logging

/// `accessgw bench`: the performance figures of SPEC section 8, printed, never asserted.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure end-to-end throughput and latency against raw libmosquitto, or RS-485 bus efficiency (--rtu).",
        discussion: """
        Runs everything in this process on 127.0.0.1: a private mosquitto (/usr/sbin/mosquitto), simulated devices, \
        a gateway with a temporary journal and a QoS 1 subscriber. With --rtu: a socat pseudo-terminal pair, a \
        baud-paced RTU simulator and a gateway polling that line; prints the line's theoretical transactions/s and \
        the achieved ones.
        """
    )

    @Flag(help: "RS-485 efficiency instead of the end-to-end benchmark.") var rtu = false
    @Flag(help: "With --rtu: event latency on an idle line (8 face doors, 6 events a minute each, timeout 200ms, turnaround 5ms, poll 100ms by default) beside the bound the line allows.") var idle = false
    @Option(help: "With --rtu --idle: print a trace of this many transactions on the line after warm-up.") var trace = 0
    @Flag(help: "Command latency: signed commands to backlogged devices on RS-485 at 9600 and 115200 baud and on TCP.") var commands = false
    @Flag(help: "Replay: live latency with and without a replay of --events history events (default 10000) running.") var replay = false
    @Option(help: "With --replay: baseline/replay window pairs.") var rounds = 3
    @Flag(help: "End to end twice, without then with receipts (SPEC 4.3, the subscriber confirming what it received): CPU per confirmed event beside CPU per delivered event.") var receipts = false
    @Flag(help: "Scale: 1000 idle devices on 10 TCP buses at 5 Hz, accessgw run vs collectd, CPU per poll and RSS.") var scale = false
    @Flag(help: "With --scale: measure the gateway alone, without collectd.") var noCollectd = false
    @Option(help: "Simulated devices (end to end: over TCP; --rtu: on the one line).") var devices: Int?
    @Option(help: "TCP buses the devices are spread over (end to end).") var buses = 3
    @Option(help: "Total backlog events drained (end to end).") var events = 30_000
    @Option(help: "Seconds of the live latency phase (end to end) or of the measured window (--rtu).") var duration: Double = 10
    @Option(help: "Total events/s recorded during the live phase (end to end).") var rate: Double = 300
    @Option(help: "Poll interval of every device.") var poll = "200ms"
    @Option(help: "MQTT max_inflight of the gateway and of the raw baseline.") var maxInflight = 100
    @Option(help: "Baud rate of the line (--rtu).") var baud = 19200
    @Option(help: "Device response latency in milliseconds (--rtu).") var latency = 5
    @Option(help: "Configured bus turnaround in milliseconds (--rtu).") var turnaround = 0
    @Flag(help: "Print one JSON object instead of text.") var json = false
    @Option(help: "Gateway log level.") var logLevel: Logger.Level = .error

    func run() async throws {
        GatewayLogHandler.bootstrap(level: logLevel)
        let logger = Logger(label: "accessgw.bench")
        do {
            if commands {
                var options = CommandBench.Options()
                options.devices = devices ?? options.devices
                options.duration = duration
                options.latencyMillis = latency
                let result = try await CommandBench.run(options, logger: logger)
                print(json ? try Self.json(result) : result.text)
            } else if replay {
                var options = ReplayBench.Options()
                options.history = events == 30_000 ? options.history : events
                options.liveDevices = devices ?? options.liveDevices
                options.liveRate = rate == 300 ? options.liveRate : rate
                options.poll = poll == "200ms" ? options.poll : poll
                options.baseline = duration == 10 ? options.baseline : duration
                options.rounds = rounds
                options.maxInflight = maxInflight
                let result = try await ReplayBench.run(options, logger: logger)
                print(json ? try Self.json(result) : result.text)
            } else if scale {
                var options = ScaleBench.Options()
                options.devices = devices ?? options.devices
                options.buses = buses == 3 ? options.buses : buses
                options.duration = duration == 10 ? options.duration : duration
                options.collectd = !noCollectd
                let result = try await ScaleBench.run(options, logger: logger)
                print(json ? try Self.json(result) : result.text)
            } else if rtu, idle {
                var options = RS485IdleBench.Options()
                options.devices = devices ?? options.devices
                options.duration = duration == 10 ? options.duration : duration
                options.baud = baud
                options.latencyMillis = latency
                options.turnaroundMillis = turnaround == 0 ? options.turnaroundMillis : turnaround
                options.poll = poll == "200ms" ? options.poll : poll
                options.traceTransactions = trace
                let result = try await RS485IdleBench.run(options, logger: logger)
                print(json ? try Self.json(result) : result.text)
            } else if rtu {
                var options = RS485Bench.Options()
                options.devices = devices ?? options.devices
                options.duration = duration
                options.baud = baud
                options.latencyMillis = latency
                options.turnaroundMillis = turnaround
                options.poll = poll
                let result = try await RS485Bench.run(options, logger: logger)
                print(json ? try Self.json(result) : result.text)
            } else {
                var options = EndToEndBench.Options()
                options.devices = devices ?? options.devices
                options.buses = buses
                options.events = events
                options.duration = duration
                options.rate = rate
                options.poll = poll
                options.maxInflight = maxInflight
                let result = try await EndToEndBench.run(options, logger: logger)
                guard receipts else {
                    print(json ? try Self.json(result) : result.text)
                    return
                }
                options.receipts = true
                let confirmed = try await EndToEndBench.run(options, logger: logger)
                // Live latency while the gateway re-sends the whole drained backlog (no receipt arrives).
                options.withholdReceipts = true
                options.resendAfter = "5s"
                let resending = try await EndToEndBench.run(options, logger: logger)
                if json {
                    print(try Self.json(["without_receipts": result, "with_receipts": confirmed, "resending": resending]))
                } else {
                    print("without receipts:\n" + result.text + "\n\nwith receipts:\n" + confirmed.text
                          + "\n\nwith receipts withheld (resend_after 5s: the backlog is re-sent during the live phase):\n" + resending.text)
                    let with = confirmed.gatewayCPUMicrosPerConfirmedEvent.map { String(format: "%.1f", $0) } ?? "n/a"
                    print(String(format: "\ngateway CPU: %.1f us per delivered event without receipts, %@ us per confirmed event with them; ratio %.2f and %.2f",
                                 result.gatewayCPUMicrosPerEvent, with, result.ratio, confirmed.ratio))
                    func ms(_ value: Int64?) -> String { value.map { "\($0)" } ?? "n/a" }
                    print("live latency p50/p99/max ms: without receipts \(ms(result.latencyP50Millis))/\(ms(result.latencyP99Millis))/\(ms(result.latencyMaxMillis)), "
                          + "with receipts \(ms(confirmed.latencyP50Millis))/\(ms(confirmed.latencyP99Millis))/\(ms(confirmed.latencyMaxMillis)), "
                          + "while re-sending \(resending.resent ?? 0) events \(ms(resending.latencyP50Millis))/\(ms(resending.latencyP99Millis))/\(ms(resending.latencyMaxMillis))")
                }
            }
        } catch let error as BenchError {
            throw CommandFailure(error.description)
        }
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
