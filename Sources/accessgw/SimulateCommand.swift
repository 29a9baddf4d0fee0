import AccessModel
import ArgumentParser
import Dispatch
import Foundation
import DeviceProfiles
import Gateway
import Logging
import Simulators

/// `accessgw simulate`: serves simulated devices from a simulator config, or one device from the command line.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run device simulators serving the register maps over Modbus TCP or RTU.",
        discussion: """
            accessgw simulate --config SIMFILE
            accessgw simulate --profile face-door --tcp 127.0.0.1:1502 --unit 1 --rate 2/s
            accessgw simulate --profile elevator --rtu /dev/ttyUSB1 --baud 9600 --unit 3
            """)

    @Option(name: .long, help: "A simulator config file (YAML) listing the devices to serve.")
    var config: String?

    @Option(name: .long, help: "The device profile to simulate: face-door, plate-reader or elevator (or a path to it).")
    var profile: String?

    @Option(name: .long, help: "Serve Modbus TCP on HOST:PORT.")
    var tcp: String?

    @Option(name: .long, help: "Serve Modbus RTU on this serial device.")
    var rtu: String?

    @Option(name: .long, help: "RTU baud rate.")
    var baud: Int = 9600

    @Option(name: .long, help: "RTU parity: N, E or O.")
    var parity: String = "N"

    @Flag(name: .long, help: "Pace RTU replies at the baud rate so line timing is physical.")
    var pace = false

    @Option(name: .long, help: "The Modbus unit id.")
    var unit: Int = 1

    @Option(name: .long, help: "Events per second, e.g. 5 or 5/s.")
    var rate: String?

    @Option(name: .long, help: "Events the device's log holds.")
    var capacity: Int = 1000

    @Option(name: .long, help: "Events recorded before serving starts.")
    var backlog: Int = 0

    func validate() throws {
        if config != nil {
            guard profile == nil, tcp == nil, rtu == nil else {
                throw ValidationError("--config cannot be combined with --profile, --tcp or --rtu")
            }
            return
        }
        guard let profile else { throw ValidationError("give --config SIMFILE, or --profile P with --tcp or --rtu") }
        guard Self.kind(ofProfile: profile) != nil || Self.mapProfile(profile) != nil else {
            throw ValidationError("profile '\(profile)' is neither a simulated kind (face-door, plate-reader, elevator) nor a map-2 profile with blocks")
        }
        guard (tcp == nil) != (rtu == nil) else { throw ValidationError("give exactly one of --tcp HOST:PORT or --rtu DEV") }
        if let tcp, Self.hostPort(tcp) == nil { throw ValidationError("--tcp '\(tcp)' is not HOST:PORT") }
        guard (1...247).contains(unit) else { throw ValidationError("--unit \(unit) is not in 1...247") }
        guard capacity >= 3 else { throw ValidationError("--capacity \(capacity) must be at least 3") }
        guard SerialLineSettings.Parity(rawValue: parity.uppercased()) != nil else { throw ValidationError("--parity must be N, E or O") }
        if let rate, RateText.perSecond(rate) == nil { throw ValidationError("--rate '\(rate)' is not like 5/s") }
    }

    func run() async throws {
        GatewayLogHandler.bootstrap(level: .info)
        let logger = Logger(label: "accessgw.simulate")
        let simulatorConfig: SimulatorConfig
        do {
            simulatorConfig = try config.map { path throws(ConfigurationError) in try SimulatorConfig.load(path: path) }
                ?? commandLineConfig()
        } catch {
            throw ConfigFailure(error.description)
        }
        let host = SimulatorHost(config: simulatorConfig, logger: logger)
        do {
            try host.start()
        } catch {
            FileHandle.standardError.write(Data("accessgw simulate: \(error)\n".utf8))
            throw ExitCode(1)
        }
        for line in host.summary { logger.info("serving \(line)") }
        let signal = await Self.waitForTermination()
        logger.info("received \(signal), stopping simulators")
        host.stop()
    }
}

extension SimulateCommand {
    /// The one-device config the command-line options describe.
    func commandLineConfig() -> SimulatorConfig {
        let transport: SimulatorConfig.Transport
        if let tcp, let (host, port) = Self.hostPort(tcp) {
            transport = .tcp(host: host, port: port)
        } else {
            let settings = SerialLineSettings(baud: baud, parity: SerialLineSettings.Parity(rawValue: parity.uppercased())!,
                                              pace: pace)
            transport = .rtu(path: rtu ?? "", settings: settings)
        }
        let perSecond = rate.flatMap(RateText.perSecond) ?? 0
        if let mapProfile = Self.mapProfile(profile ?? ""), let map = mapProfile.map {
            var device = SimulatorConfig.Device(kind: .faceDoor, unit: UInt8(unit), transport: transport)
            device.profile = mapProfile
            if perSecond > 0 { device.actions = Self.counterActions(map, perSecond: perSecond) }
            return SimulatorConfig(devices: [device])
        }
        let kind = Self.kind(ofProfile: profile ?? "")!
        let scenario = EventScenario(rate: perSecond, backlog: backlog)
        return SimulatorConfig(devices: [SimulatorConfig.Device(kind: kind, unit: UInt8(unit), transport: transport,
                                                                capacity: capacity, scenario: scenario)])
    }

    /// The profile when it is a map-2 profile (blocks and rules, SPEC 3.5).
    static func mapProfile(_ profile: String) -> DeviceProfile? {
        guard let loaded = try? ProfileLibrary().profile(profile), loaded.map != nil else { return nil }
        return loaded
    }

    /// `--rate` for a map-2 device: every counter and latest-event counter of its rules grows at that rate, a
    /// latest event stamped with the device's time.
    static func counterActions(_ map: PolledMap, perSecond: Double) -> [MapAction] {
        map.rules.compactMap { rule in
            let every = max(1, Int(1000 / perSecond))
            switch rule.trigger {
            case let .counter(field, _):
                return MapAction(everyMilliseconds: every, add: [(map.fields[field].name, 1)])
            case let .latest(counter, _, time, _):
                return MapAction(everyMilliseconds: every, add: [(map.fields[counter].name, 1)], stamp: time.map { map.fields[$0].name })
            case .change:
                return nil
            }
        }
    }

    /// The simulated kind of a profile (name or path), read from the profile's `kind` and `kind_code`:
    /// the simulators implement register map version 1 of the three generic kinds.
    static func kind(ofProfile profile: String) -> DeviceKind? {
        guard let loaded = try? ProfileLibrary().profile(profile), let kind = DeviceKind(name: loaded.kind),
              loaded.kindCode.map({ $0 == Int64(kind.rawValue) }) ?? true else { return nil }
        return kind
    }

    /// `HOST:PORT` split, or nil; an empty host means loopback.
    static func hostPort(_ text: String) -> (String, UInt16)? {
        HostPort(text).map { ($0.host.isEmpty ? "127.0.0.1" : $0.host, $0.port) }
    }

    /// Waits for SIGINT or SIGTERM and returns its name.
    static func waitForTermination() async -> String {
        await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
            let queue = DispatchQueue(label: "accessgw.simulate.signals")
            let once = OnceFlag()
            var sources: [DispatchSourceSignal] = []
            for (number, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler {
                    if once.claim() { continuation.resume(returning: name) }
                }
                source.resume()
                sources.append(source)
            }
            SignalSources.keep(sources)
        }
    }
}

/// True exactly once, so the first of SIGINT/SIGTERM resumes the waiting command.
private final class OnceFlag: @unchecked Sendable {
    // @unchecked: `claimed` is only touched under `lock`.
    private let lock = NSLock()
    private var claimed = false

    func claim() -> Bool {
        lock.withLock {
            defer { claimed = true }
            return !claimed
        }
    }
}

/// Keeps the signal sources alive for the life of the process.
private enum SignalSources {
    nonisolated(unsafe) static var retained: [DispatchSourceSignal] = []

    static func keep(_ sources: [DispatchSourceSignal]) { retained += sources }
}
