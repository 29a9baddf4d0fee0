import AccessModel
import ArgumentParser
import DeviceProfiles
import Gateway
import ModbusTransport

/// `accessgw probe`: read one device once through its profile and print what an installer needs to see.
///
/// With `--config`, a running daemon of that configuration is asked through its control socket to read the device
/// on its own bus thread between polls (an RS-485 line has one master); without one, the line is opened directly.
struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Read a device once: identity, state in words, event log header and window.",
        usage: """
        accessgw probe --config /etc/accessgw/gateway.yaml door-3e
        accessgw probe --config /etc/accessgw/gateway.yaml --all
        accessgw probe --profile plate-reader --tcp 127.0.0.1:1502 --unit 1
        accessgw probe --profile face-door --rtu /dev/ttyUSB0 --baud 9600 --unit 3
        """,
        discussion: """
        With --config, when the daemon of that configuration runs, it reads the device on its own bus thread between \
        two polls (through its control socket, JOURNAL.control), so a probe never disturbs a line the daemon owns. \
        Otherwise the device is read directly. --all probes every configured device; exit 1 if any failed.
        """
    )

    @OptionGroup var target: DeviceTargetOptions

    @Flag(help: "Probe every device in --config.") var all = false

    @Option(help: "Response timeout for a direct probe, e.g. 300ms (through the daemon, the bus's own timeout applies).")
    var timeout = "1s"

    func run() async throws {
        guard let timeoutMillis = DurationText.milliseconds(timeout) else {
            throw ValidationError("--timeout '\(timeout)' is not a duration (examples: 200ms, 5s)")
        }
        if all {
            guard let config = target.config, target.device == nil else {
                throw ValidationError("--all probes every device of --config FILE; give no DEVICE with it")
            }
            return try await probeAll(config: config, timeoutMillis: timeoutMillis)
        }
        let resolved = try target.resolve()
        if let journal = resolved.journal {
            switch try askDaemon(journal: journal, device: resolved.device) {
            case let .report(text)?: return print(text)
            case let .failed(message)?: throw CommandFailure(message)
            case nil: break
            }
        }
        switch await Self.direct([resolved], timeoutMillis: timeoutMillis)[0] {
        case let .report(text): print(text)
        case let .failed(message): throw CommandFailure(message)
        }
    }

    enum Outcome {
        case report(String)
        case failed(String)
    }

    /// The daemon's answer, or nil when no daemon of this journal listens.
    func askDaemon(journal: String, device: String) throws -> Outcome? {
        let answer: JSONValue?
        do { answer = try ControlSocket.ask(ControlSocket.path(journal: journal), .object([("probe", .string(device))])) } catch {
            throw CommandFailure(error.description)
        }
        guard let answer else { return nil }
        if case let .string(report)? = answer["report"], answer["ok"] == .bool(true) { return .report(report + "\n(read by the running daemon between its polls)") }
        if case let .string(error)? = answer["error"] { return .failed(error) }
        throw CommandFailure("the daemon's answer has neither report nor error: \(answer.serialized)")
    }

    /// Every configured device, through the daemon when it runs, else directly (one connection per bus, the
    /// devices of a bus in turn); each report or failure printed, exit 1 if any failed.
    func probeAll(config: String, timeoutMillis: Int64) async throws {
        let devices = try target.resolveAll(config: config)
        var outcomes: [Outcome]
        if let journal = devices.first?.journal,
           let first = try askDaemon(journal: journal, device: devices[0].device) {
            outcomes = [first]
            for device in devices.dropFirst() {
                outcomes.append(try askDaemon(journal: journal, device: device.device)
                    ?? .failed("\(device.device): the daemon stopped during the probe"))
            }
        } else {
            outcomes = await Self.direct(devices, timeoutMillis: timeoutMillis)
        }
        var failures = 0
        for (index, outcome) in outcomes.enumerated() {
            if index > 0 { print("") }
            switch outcome {
            case let .report(text): print(text)
            case let .failed(message):
                failures += 1
                print("\(devices[index].device): FAILED: \(TerminalText.escaped(message))")
            }
        }
        print("\n\(outcomes.count - failures) of \(outcomes.count) device(s) answered")
        if failures > 0 { throw ExitCode(1) }
    }

    /// Reads `devices` directly: one connection per bus, on a thread of its own, the devices of a bus in turn.
    static func direct(_ devices: [DeviceTargetOptions.Resolved], timeoutMillis: Int64) async -> [Outcome] {
        var byBus: [String: [Int]] = [:]
        for (index, device) in devices.enumerated() { byBus["\(device.bus)|\(device.endpoint)", default: []].append(index) }
        var outcomes = [Outcome](repeating: .failed(""), count: devices.count)
        await withTaskGroup(of: [(Int, Outcome)].self) { group in
            for indices in byBus.values {
                let targets = indices.map { ($0, devices[$0]) }
                group.addTask {
                    await onDedicatedThread {
                        var connection: ModbusConnection?
                        return targets.map { index, device -> (Int, Outcome) in
                            do throws(ModbusError) {
                                if connection == nil {
                                    connection = try ModbusConnection(bus: device.bus, endpoint: device.endpoint,
                                                                      responseTimeoutMillis: Int(timeoutMillis))
                                }
                                let report = try DeviceProbe(profile: device.profile, device: device.device).read(connection!, unit: device.unit)
                                return (index, .report(report.rendered(profile: device.profile, device: device.device,
                                                                       bus: DeviceProbe.busLabel(bus: device.bus, endpoint: device.endpoint, unit: device.unit))))
                            } catch {
                                return (index, .failed("\(device.device) on \(error)"))
                            }
                        }
                    }
                }
            }
            for await results in group { for (index, outcome) in results { outcomes[index] = outcome } }
        }
        return outcomes
    }
}
