import AccessModel
import Foundation
import Logging
import RequestAuthority
import Simulators

/// `accessgw demo`: a whole community on one machine with nothing to configure — simulated devices of all three
/// kinds (TCP, and an RS-485 line over a pseudo-terminal pair when socat is installed), a local mosquitto on a
/// free port, an issuer's key pair for signed commands and replay, and the configuration a real gateway would get.
/// The caller runs the gateway on `configuration`.
public final class DemoSite: @unchecked Sendable {
    // @unchecked: built and torn down by one task; the child processes and simulators are thread-safe.
    public let directory: String
    public let brokerPort: UInt16
    public let configurationPath: String
    public let simulators: SimulatorHost
    public let hasSerialLine: Bool
    /// The demo's issuer (SPEC 4.1): may open doors and gates, call lifts and ask for a replay.
    public static let issuer = "demo-pm"
    /// Its private key, for `accessgw send --key` and replay requests; the gateway has only the `.pub` beside it.
    public let issuerKeyPath: String
    private let broker: Process
    private let serialPair: Process?

    public struct Missing: Error, CustomStringConvertible {
        public var description: String
    }

    /// Starts the broker and the simulators and writes `gateway.yaml` into `directory` (recreated).
    public init(directory: String = NSTemporaryDirectory() + "accessgw-demo", logger: Logger) throws {
        guard let mosquitto = Self.executable("mosquitto") else {
            throw Missing(description: "the demo needs the mosquitto broker: sudo apt-get install mosquitto mosquitto-clients")
        }
        self.directory = directory
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        brokerPort = try Socket.freeLoopbackPort()
        let brokerConfig = "\(directory)/mosquitto.conf"
        try "listener \(brokerPort) 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"
            .write(toFile: brokerConfig, atomically: true, encoding: .utf8)
        broker = try Self.launch(mosquitto, ["-c", brokerConfig])

        var serialPair: Process?
        let line = "\(directory)/rs485-gateway", deviceEnd = "\(directory)/rs485-devices"
        if let socat = Self.executable("socat") {
            serialPair = try Self.launch(socat, ["pty,raw,echo=0,link=\(line)", "pty,raw,echo=0,link=\(deviceEnd)"])
            let deadline = Date().addingTimeInterval(5)
            while !(FileManager.default.fileExists(atPath: line) && FileManager.default.fileExists(atPath: deviceEnd)),
                  Date() < deadline { usleep(20_000) }
        }
        self.serialPair = serialPair
        hasSerialLine = serialPair != nil

        let tcpPort = try Socket.freeLoopbackPort()
        let lan = SimulatorConfig.Transport.tcp(host: "127.0.0.1", port: tcpPort)
        var devices = [
            SimulatorConfig.Device(kind: .faceDoor, unit: 1, transport: lan, scenario: EventScenario(rate: 0.5, backlog: 5)),
            SimulatorConfig.Device(kind: .plateReader, unit: 2, transport: lan, scenario: EventScenario(rate: 0.3, backlog: 3)),
            SimulatorConfig.Device(kind: .elevator, unit: 3, transport: lan, scenario: EventScenario(rate: 0.4, backlog: 3)),
        ]
        if hasSerialLine {
            let rs485 = SimulatorConfig.Transport.rtu(path: deviceEnd, settings: SerialLineSettings(baud: 19200, pace: true))
            devices.append(SimulatorConfig.Device(kind: .faceDoor, unit: 1, transport: rs485, scenario: EventScenario(rate: 0.3)))
            devices.append(SimulatorConfig.Device(kind: .elevator, unit: 2, transport: rs485, scenario: EventScenario(rate: 0.2)))
        }
        simulators = SimulatorHost(config: SimulatorConfig(seed: UInt64(Date().timeIntervalSince1970), devices: devices), logger: logger)
        try simulators.start()

        // On a real site the issuer's key pair is made on the issuer's machine and only the .pub reaches the gateway
        // (README, "Remote commands"); here both ends are this machine.
        let keys = try IssuerKeyFiles.generate(id: Self.issuer, directory: directory)
        issuerKeyPath = keys.privateKey

        configurationPath = "\(directory)/gateway.yaml"
        try Self.configuration(directory: directory, brokerPort: brokerPort, tcpPort: tcpPort,
                               serialLine: hasSerialLine ? line : nil, issuerPublicKey: keys.publicKey)
            .write(toFile: configurationPath, atomically: true, encoding: .utf8)
        let deadline = Date().addingTimeInterval(5)
        while !Socket.acceptsConnections(port: brokerPort), Date() < deadline { usleep(20_000) }
    }

    /// Stops the simulators, the serial pair and the broker.
    public func stop() {
        simulators.stop()
        for process in [serialPair, broker].compactMap({ $0 }) where process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    static func configuration(directory: String, brokerPort: UInt16, tcpPort: UInt16, serialLine: String?,
                              issuerPublicKey: String) -> String {
        var yaml = """
        # Written by `accessgw demo`: the configuration a real site would have, pointed at simulators.
        gateway:
          id: gw-demo
          site: demo-community
          journal: \(directory)/journal.db
        mqtt:
          host: 127.0.0.1
          port: \(brokerPort)
        metrics:
          listen: "off"
        buses:
          - id: lan
            tcp: { host: 127.0.0.1, port: \(tcpPort) }
            timeout: 300ms

        """
        if let serialLine {
            yaml += """
              - id: b2-rs485
                rtu: { device: \(serialLine), baud: 19200 }
                timeout: 200ms
                turnaround: 2ms

            """
        }
        yaml += """
        devices:
          - { id: door-3e, profile: face-door, bus: lan, unit: 1, poll: 200ms, time_sync: true, location: { building: "3", entrance: east } }
          - { id: gate-north, profile: plate-reader, bus: lan, unit: 2, poll: 200ms, location: { gate: north } }
          - { id: lift-3a, profile: elevator, bus: lan, unit: 3, poll: 200ms, location: { building: "3", car: A } }

        """
        if serialLine != nil {
            yaml += """
              - { id: door-2w, profile: face-door, bus: b2-rs485, unit: 1, poll: 250ms, location: { building: "2", entrance: west } }
              - { id: lift-2a, profile: elevator, bus: b2-rs485, unit: 2, poll: 250ms, location: { building: "2", car: A } }

            """
        }
        yaml += """
        # Signed commands (accessgw send) and replay requests (SPEC 4.1, 4.2) from the demo's issuer.
        commands:
          enabled: true
          issuers:
            - id: \(issuer)
              public_key_file: \(issuerPublicKey)
              allow:
                - { devices: ["door-*", "gate-*"], commands: [open, close] }
                - { devices: ["lift-*"], commands: [call] }
                - { devices: ["*"], commands: [replay] }
        replay:
          max_rate: 2000/s

        """
        return yaml
    }

    static func executable(_ name: String) -> String? {
        for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin", "/usr/local/sbin"] {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    static func launch(_ path: String, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.runWithTerminationSignalsUnblocked()
        return process
    }
}
