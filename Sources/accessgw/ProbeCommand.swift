import AccessModel
import ArgumentParser
import DeviceProfiles
import Gateway
import ModbusTransport

/// `accessgw probe`: read one device once through its profile and print what an installer needs to see.
struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Read a device once: identity, state in words, event log header and window.",
        usage: """
        accessgw probe --config /etc/accessgw/gateway.yaml door-3e
        accessgw probe --profile plate-reader --tcp 127.0.0.1:1502 --unit 1
        accessgw probe --profile face-door --rtu /dev/ttyUSB0 --baud 9600 --unit 3
        """
    )

    @OptionGroup var target: DeviceTargetOptions

    @Option(help: "Response timeout, e.g. 300ms.") var timeout = "1s"

    func run() async throws {
        let resolved = try target.resolve()
        guard let timeoutMillis = DurationText.milliseconds(timeout) else {
            throw ValidationError("--timeout '\(timeout)' is not a duration (examples: 200ms, 5s)")
        }
        let probe = DeviceProbe(profile: resolved.profile, device: resolved.device)
        let (bus, unit, endpoint) = (resolved.bus, resolved.unit, resolved.endpoint)
        do {
            let report = try await onDedicatedThread {
                let connection = try ModbusConnection(bus: bus, endpoint: endpoint, responseTimeoutMillis: Int(timeoutMillis))
                return try probe.read(connection, unit: unit)
            }
            print(report.rendered(profile: resolved.profile, device: resolved.device, bus: "\(bus == endpoint.description ? "" : bus + " ")\(endpoint) unit \(unit)"))
        } catch let error as ModbusError {
            throw CommandFailure("\(resolved.device) on \(error)")
        }
    }
}
