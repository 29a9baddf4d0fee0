import AccessModel
import ArgumentParser
import DeviceProfiles
import Gateway
import ModbusTransport
#if canImport(Glibc)
import Glibc
#endif

/// Options that name one device directly: a profile and a TCP or RTU endpoint with a unit.
struct DeviceTargetOptions: ParsableArguments {
    @Option(help: "Configuration file; with a DEVICE id instead of --profile and --tcp/--rtu.") var config: String?
    @Argument(help: "The device id in --config.") var device: String?
    @Option(help: "Profile name (a file in the profile directories, without .yaml) or path.") var profile: String?
    @Option(help: "Modbus TCP endpoint HOST:PORT.") var tcp: String?
    @Option(help: "Serial device of an RS-485 line.") var rtu: String?
    @Option(help: "Baud rate of the serial line.") var baud = 9600
    @Option(help: "Parity of the serial line: N, E or O.") var parity = "N"
    @Option(help: "Modbus unit id.") var unit: UInt8 = 1

    struct Resolved {
        var profile: DeviceProfile
        var endpoint: BusEndpoint
        var unit: UInt8
        var device: String
        var bus: String
        /// The journal of the configuration the device comes from (whose daemon may run), nil for --profile.
        var journal: String? = nil
    }

    func resolve() throws -> Resolved {
        if let config { return try resolve(config: config) }
        guard let profile else { throw ValidationError("give --config FILE DEVICE, or --profile P with --tcp or --rtu") }
        let endpoint: BusEndpoint
        switch (tcp, rtu) {
        case let (tcp?, nil): endpoint = try Self.tcpEndpoint(tcp)
        case let (nil, rtu?):
            guard let parity = SerialLine.Parity(rawValue: parity.uppercased()) else {
                throw ValidationError("--parity must be N, E or O, not '\(parity)'")
            }
            endpoint = .rtu(SerialLine(device: rtu, baud: baud, parity: parity))
        default: throw ValidationError("give exactly one of --tcp HOST:PORT and --rtu DEVICE")
        }
        let loaded: DeviceProfile
        do { loaded = try ProfileLibrary().profile(profile) } catch { throw ConfigFailure(error.description) }
        return Resolved(profile: loaded, endpoint: endpoint, unit: unit, device: loaded.name, bus: endpoint.description)
    }

    /// The device as the configuration describes it: its profile, its bus's endpoint, its unit.
    func resolve(config: String) throws -> Resolved {
        guard let device else { throw ValidationError("name the DEVICE to probe from \(config)") }
        let loaded: GatewayConfiguration
        do { loaded = try GatewayConfiguration.load(path: config) } catch { throw ConfigFailure(error.description) }
        guard let entry = loaded.devices.first(where: { $0.id == device }) else {
            throw ValidationError("no device '\(device)' in \(config) (devices: \(loaded.devices.map(\.id).joined(separator: ", ")))")
        }
        return Self.resolved(entry, in: loaded)
    }

    /// Every device of the configuration, in its order.
    func resolveAll(config: String) throws -> [Resolved] {
        let loaded: GatewayConfiguration
        do { loaded = try GatewayConfiguration.load(path: config) } catch { throw ConfigFailure(error.description) }
        guard !loaded.devices.isEmpty else { throw ValidationError("\(config) configures no devices") }
        return loaded.devices.map { Self.resolved($0, in: loaded) }
    }

    static func resolved(_ entry: GatewayConfiguration.Device, in loaded: GatewayConfiguration) -> Resolved {
        let bus = loaded.buses.first { $0.id == entry.bus }!
        return Resolved(profile: entry.profile, endpoint: bus.endpoint, unit: entry.unit, device: entry.id, bus: bus.id,
                        journal: loaded.journalPath)
    }

    static func tcpEndpoint(_ text: String) throws -> BusEndpoint {
        guard let endpoint = HostPort(text), endpoint.port > 0 else { throw ValidationError("'\(text)' is not HOST:PORT") }
        return .tcp(host: endpoint.host, port: Int(endpoint.port))
    }
}

/// A runtime failure: one sentence on stderr, exit 1.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The user may not read a file the command needs (the configuration, the journal): one sentence saying so, exit 77
/// (EX_NOPERM), so that `status` run as a Nagios check reads "cannot tell", not "something is down" (1).
struct PermissionFailure: Error, CustomStringConvertible {
    var description: String

    /// Nil when `path` may be opened for reading or does not exist; else the failure naming `what` and the user.
    static func reading(_ path: String, what: String) -> PermissionFailure? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        let code = errno
        if fd >= 0 { close(fd) }
        guard fd < 0, code == EACCES || code == EPERM else { return nil }
        return PermissionFailure(description: "permission denied: \(YAMLValue.effectiveUserName()) may not read \(what) \(path); "
            + "run as root, or as a member of the group the file and its directory grant read access (accessgw)")
    }
}

/// A configuration error: the problems on stderr, exit 78 (EX_CONFIG).
struct ConfigFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

