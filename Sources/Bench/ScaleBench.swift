import Foundation
import Logging
import Simulators
#if canImport(Glibc)
import Glibc
#endif

/// `accessgw bench --scale` (SPEC §8, scale): 1000 idle devices on 10 TCP buses (one port serving 100 unit ids
/// each) polled at 5 Hz by the gateway (`accessgw run` as a child process) and, in the same run, by collectd's
/// modbus and mqtt plugins (Debian collectd-core) against an identical second set of simulators. The simulators
/// live in this process, so each child's CPU time (/proc/PID/stat utime+stime) is its own; polls and requests are
/// counted by the simulators.
public enum ScaleBench {
    public struct Options: Sendable {
        public var devices = 1000
        public var buses = 10
        public var poll = 0.2
        public var warmup = 5.0
        public var duration = 20.0
        public var collectd = true
        public init() {}
    }

    public struct Client: Codable, Sendable {
        public var name: String
        public var cpuSeconds: Double
        public var requests: Int
        /// Modbus requests one device poll makes.
        public var requestsPerPoll: Double
        public var polls: Double
        public var microsecondsPerPoll: Double
        public var microsecondsPerRequest: Double
        public var rssMiB: Double
        public var peakRssMiB: Double
    }

    public struct Result: Codable, Sendable {
        public var devices: Int
        public var buses: Int
        public var pollHz: Double
        public var seconds: Double
        public var gateway: Client
        public var collectd: Client?
        public var collectdProblem: String?
        /// Gateway CPU per poll over collectd's; target <= 1.
        public var ratio: Double?
    }

    public static func run(_ options: Options, logger: Logger) async throws -> Result {
        let directory = try makeRunDirectory("accessgw-bench-scale")
        defer { try? FileManager.default.removeItem(at: directory) }
        let broker = try BenchBroker(directory: directory)
        defer { broker.stop() }
        let perBus = options.devices / options.buses
        func servers() throws -> [ModbusTCPServer] {
            try (0..<options.buses).map { bus in
                let devices = (0..<perBus).map { index in
                    SimulatedDevice(kind: DeviceKind.allCases[(bus * perBus + index) % 3], unit: UInt8(index + 1), capacity: 100)
                }
                let server = ModbusTCPServer(host: "127.0.0.1", port: 0, devices: devices, logger: logger)
                try server.start()
                return server
            }
        }
        let gatewayServers = try servers()
        defer { gatewayServers.forEach { $0.stop() } }

        // The gateway, as the daemon runs.
        var yaml = """
        gateway: { id: gw-scale, site: bench-site, journal: \(directory.path)/journal.db }
        mqtt: { host: 127.0.0.1, port: \(broker.port), topic_prefix: bench }
        metrics: { listen: "off" }
        buses:

        """
        for (bus, server) in gatewayServers.enumerated() {
            yaml += "  - { id: b\(bus), tcp: { host: 127.0.0.1, port: \(server.port) }, timeout: 300ms }\n"
        }
        yaml += "devices:\n"
        for bus in 0..<options.buses {
            for index in 0..<perBus {
                let kind = DeviceKind.allCases[(bus * perBus + index) % 3]
                yaml += "  - { id: s\(bus)-\(index + 1), profile: \(kind.name), bus: b\(bus), unit: \(index + 1), poll: \(Int(options.poll * 1000))ms }\n"
            }
        }
        let gatewayConfig = directory.appendingPathComponent("gateway.yaml")
        try yaml.write(to: gatewayConfig, atomically: true, encoding: .utf8)
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let gateway = try spawn(executable, ["run", "--config", gatewayConfig.path, "--log-level", "error"],
                                log: directory.appendingPathComponent("gateway.log"))
        defer { kill(gateway.processIdentifier, SIGKILL); gateway.waitUntilExit() }

        // collectd against its own identical simulators.
        var collectdServers: [ModbusTCPServer] = []
        defer { collectdServers.forEach { $0.stop() } }
        var collectd: Process?
        var collectdProblem: String?
        if options.collectd {
            if FileManager.default.isExecutableFile(atPath: "/usr/sbin/collectd") {
                collectdServers = try servers()
                let conf = directory.appendingPathComponent("collectd.conf")
                try collectdConfiguration(servers: collectdServers, perBus: perBus, interval: options.poll,
                                          brokerPort: broker.port, directory: directory)
                    .write(to: conf, atomically: true, encoding: .utf8)
                collectd = try spawn("/usr/sbin/collectd", ["-f", "-C", conf.path], log: directory.appendingPathComponent("collectd.log"))
            } else {
                collectdProblem = "/usr/sbin/collectd is not installed (apt-get install collectd-core)"
            }
        }
        defer { if let collectd { kill(collectd.processIdentifier, SIGKILL); collectd.waitUntilExit() } }

        usleep(UInt32(options.warmup * 1_000_000))
        func requests(_ servers: [ModbusTCPServer]) -> Int { servers.reduce(0) { $0 + $1.statistics.requests } }
        let g0 = cpuSeconds(gateway.processIdentifier), r0 = requests(gatewayServers)
        let c0 = collectd.map { cpuSeconds($0.processIdentifier) } ?? 0, q0 = requests(collectdServers)
        let t0 = monotonicSeconds()
        usleep(UInt32(options.duration * 1_000_000))
        let g1 = cpuSeconds(gateway.processIdentifier), r1 = requests(gatewayServers)
        let c1 = collectd.map { cpuSeconds($0.processIdentifier) } ?? 0, q1 = requests(collectdServers)
        let seconds = monotonicSeconds() - t0
        guard gateway.isRunning else {
            let log = (try? String(contentsOf: directory.appendingPathComponent("gateway.log"), encoding: .utf8)) ?? ""
            throw BenchError("accessgw run exited during the scale run: \(log.suffix(500))")
        }
        // Gateway: one event-log read per poll plus the state block every state_poll (1 s) = 1 + poll/1 s.
        let gatewayClient = client("accessgw", pid: gateway.processIdentifier, cpu: g1 - g0, requests: r1 - r0,
                                   requestsPerPoll: 1 + options.poll)
        var collectdClient: Client?
        if let collectd {
            if collectd.isRunning, q1 > q0 {
                // collectd: 10 registers as Uint64 + Uint64 + Uint32, one request per value.
                collectdClient = client("collectd", pid: collectd.processIdentifier, cpu: c1 - c0, requests: q1 - q0, requestsPerPoll: 3)
            } else {
                let log = (try? String(contentsOf: directory.appendingPathComponent("collectd.log"), encoding: .utf8)) ?? ""
                collectdProblem = "collectd made no Modbus request (running: \(collectd.isRunning)); it said: \(log.suffix(400))"
            }
        }
        return Result(devices: perBus * options.buses, buses: options.buses, pollHz: 1 / options.poll, seconds: seconds,
                      gateway: gatewayClient, collectd: collectdClient, collectdProblem: collectdProblem,
                      ratio: collectdClient.map { gatewayClient.microsecondsPerPoll / $0.microsecondsPerPoll })
    }

    static func client(_ name: String, pid: Int32, cpu: Double, requests: Int, requestsPerPoll: Double) -> Client {
        let polls = Double(requests) / requestsPerPoll
        let (rss, peak) = residentMiB(pid)
        return Client(name: name, cpuSeconds: cpu, requests: requests, requestsPerPoll: requestsPerPoll, polls: polls,
                      microsecondsPerPoll: cpu * 1e6 / max(polls, 1), microsecondsPerRequest: cpu * 1e6 / Double(max(requests, 1)),
                      rssMiB: rss, peakRssMiB: peak)
    }

    static func collectdConfiguration(servers: [ModbusTCPServer], perBus: Int, interval: Double, brokerPort: UInt16,
                                      directory: URL) -> String {
        var conf = """
        Hostname "bench"
        FQDNLookup false
        Interval \(interval)
        ReadThreads 10
        WriteThreads 2
        BaseDir "\(directory.path)"
        PIDFile "\(directory.path)/collectd.pid"
        TypesDB "/usr/share/collectd/types.db"
        LoadPlugin modbus
        LoadPlugin mqtt
        <Plugin mqtt>
          <Publish "bench">
            Host "127.0.0.1"
            Port \(brokerPort)
            ClientId "collectd-bench"
            QoS 1
            Prefix "collectd"
          </Publish>
        </Plugin>
        <Plugin modbus>
          <Data "head">
            RegisterBase 0
            RegisterType Uint64
            RegisterCmd ReadHolding
            Type gauge
            Instance "r0"
          </Data>
          <Data "mid">
            RegisterBase 4
            RegisterType Uint64
            RegisterCmd ReadHolding
            Type gauge
            Instance "r4"
          </Data>
          <Data "tail">
            RegisterBase 8
            RegisterType Uint32
            RegisterCmd ReadHolding
            Type gauge
            Instance "r8"
          </Data>

        """
        for (bus, server) in servers.enumerated() {
            for unit in 1...perBus {
                conf += """
                  <Host "s\(bus)-\(unit)">
                    Address "127.0.0.1"
                    Port "\(server.port)"
                    Interval \(interval)
                    <Slave \(unit)>
                      Instance "u\(unit)"
                      Collect "head"
                      Collect "mid"
                      Collect "tail"
                    </Slave>
                  </Host>

                """
            }
        }
        return conf + "</Plugin>\n"
    }

    static func spawn(_ path: String, _ arguments: [String], log: URL) throws -> Process {
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        do { try process.run() } catch { throw BenchError("cannot start \(path): \(error)") }
        return process
    }

    /// utime + stime of every thread of `pid`, from /proc/PID/stat, in seconds.
    static func cpuSeconds(_ pid: Int32) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return 0 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, utime 14 and stime 15 (1-based) → indices 11 and 12 here.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// VmRSS and VmHWM of `pid` in MiB.
    static func residentMiB(_ pid: Int32) -> (Double, Double) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Double {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name) }) else { return 0 }
            return Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0").map { $0 / 1024 } ?? 0
        }
        return (field("VmRSS:"), field("VmHWM:"))
    }
}

extension ScaleBench.Result {
    public var text: String {
        func line(_ c: ScaleBench.Client) -> String {
            "  \(c.name): \(String(format: "%.2f", c.cpuSeconds)) s CPU, \(c.requests) requests (\(String(format: "%.0f", c.polls)) polls at \(String(format: "%.1f", c.requestsPerPoll)) requests/poll): "
                + "\(String(format: "%.1f", c.microsecondsPerPoll)) µs/poll, \(String(format: "%.1f", c.microsecondsPerRequest)) µs/request, RSS \(String(format: "%.1f", c.rssMiB)) MiB (peak \(String(format: "%.1f", c.peakRssMiB)))"
        }
        var text = "scale: \(devices) idle devices on \(buses) TCP buses at \(String(format: "%.0f", pollHz)) Hz, window \(String(format: "%.1f", seconds)) s\n" + line(gateway)
        if let collectd { text += "\n" + line(collectd) }
        if let collectdProblem { text += "\n  collectd: not measured: \(collectdProblem)" }
        if let ratio { text += "\n  ratio accessgw / collectd CPU per poll: \(String(format: "%.2f", ratio)) (target <= 1); accessgw RSS target <= 40 MiB" }
        return text
    }
}
