import AccessModel
import BusPolling
import Foundation
import Logging
import ModbusTransport
import MQTTPublisher

/// `accessgw check --online`: what the file alone cannot tell. Serial devices exist and the service user may open
/// them; secret files are readable by the service user (a check run as root passes where the daemon would fail);
/// the broker resolves and accepts the credentials; each device answers with the kind its profile expects.
public struct OnlineCheck: Sendable {
    public struct Finding: Sendable, CustomStringConvertible {
        public enum Severity: String, Sendable { case ok, warning, error }
        public var severity: Severity
        public var subject: String
        public var message: String
        public var description: String { "\(severity.rawValue): \(subject): \(message)" }
    }

    public let configuration: GatewayConfiguration
    public let account: ServiceAccount

    public init(configuration: GatewayConfiguration, account: ServiceAccount) {
        self.configuration = configuration
        self.account = account
    }

    /// The checks that need neither the broker nor the devices: serial devices, secrets, broker name, bus load.
    /// `run` logs these at start.
    public func local() -> [Finding] {
        var findings: [Finding] = []
        for bus in configuration.buses {
            guard case let .rtu(line) = bus.endpoint else { continue }
            let subject = "bus \(bus.id)"
            switch account.access(line.device, write: true) {
            case .allowed: findings.append(Finding(severity: .ok, subject: subject, message: "\(line.device) is readable and writable by \(account.name)"))
            case let .denied(reason): findings.append(Finding(severity: .error, subject: subject, message: reason))
            }
        }
        var secrets: [(String, String)] = []
        if let path = configuration.mqtt.passwordFile { secrets.append(("mqtt.password_file", path)) }
        if let path = configuration.mqtt.caFile { secrets.append(("mqtt.tls.ca_file", path)) }
        if let path = configuration.mqtt.certFile { secrets.append(("mqtt.tls.cert_file", path)) }
        if let path = configuration.mqtt.keyFile { secrets.append(("mqtt.tls.key_file", path)) }
        if let path = configuration.privacy.keyFile { secrets.append(("gateway.privacy.key_file", path)) }
        for (key, path) in secrets {
            switch account.access(path, write: false) {
            case .allowed: findings.append(Finding(severity: .ok, subject: key, message: "\(path) is readable by \(account.name)"))
            case let .denied(reason): findings.append(Finding(severity: .error, subject: key, message: reason))
            }
        }
        let host = configuration.mqtt.host
        if let failure = Self.resolve(host) {
            findings.append(Finding(severity: .error, subject: "mqtt.host", message: "\(host) does not resolve: \(failure)"))
        }
        for warning in configuration.warnings { findings.append(Finding(severity: .warning, subject: "bus load", message: warning)) }
        return findings
    }

    /// Everything: the local checks, a connection to the broker with the configured credentials, and one probe of
    /// each device. Probing shares the line with a running daemon: on RS-485 run it while the daemon is stopped.
    public func all(timeout: Duration = .seconds(5)) async -> [Finding] {
        var findings = local()
        if !findings.contains(where: { $0.subject == "mqtt.host" }) { findings.append(await broker(timeout: timeout)) }
        findings += await devices()
        return findings
    }

    /// Connects with the daemon's settings under a client id of its own (so a running daemon keeps its session).
    func broker(timeout: Duration) async -> Finding {
        var settings = configuration.mqttSettings
        settings.clientID += "-check"
        let subject = "mqtt \(settings.host):\(settings.port)"
        var quiet = Logger(label: "accessgw.check")
        quiet.logLevel = .critical
        do {
            let publisher = try MQTTPublisher(settings: settings, logger: quiet)
            try publisher.start()
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline, !publisher.isConnected, publisher.counters.lastError == nil {
                try? await Task.sleep(for: .milliseconds(50))
            }
            let (connected, error) = (publisher.isConnected, publisher.counters.lastError)
            await publisher.abortWithoutDisconnect()
            if connected {
                return Finding(severity: .ok, subject: subject, message: "accepted the connection\(settings.username.map { " as \($0)" } ?? "")")
            }
            return Finding(severity: .error, subject: subject, message: error.map { "\($0)" } ?? "no answer within \(timeout)")
        } catch {
            return Finding(severity: .error, subject: subject, message: "\(error)")
        }
    }

    /// Reads each device once through its profile, one connection per bus, buses in parallel.
    func devices() async -> [Finding] {
        let configuration = configuration
        return await withTaskGroup(of: [Finding].self) { group in
            for bus in configuration.buses {
                let onBus = configuration.devices.filter { $0.bus == bus.id }
                guard !onBus.isEmpty else { continue }
                group.addTask {
                    (try? await onDedicatedThread { () -> [Finding] in
                        let connection: ModbusConnection
                        do {
                            connection = try ModbusConnection(bus: bus.id, endpoint: bus.endpoint, responseTimeoutMillis: Int(bus.timeoutMillis))
                        } catch {
                            return onBus.map { Finding(severity: .error, subject: "device \($0.id)", message: "cannot open bus \(bus.id): \(error)") }
                        }
                        return onBus.map { device in
                            let probe = DeviceProbe(profile: device.profile, device: device.id)
                            do {
                                let report = try probe.read(connection, unit: device.unit)
                                if let problem = report.problems.first {
                                    return Finding(severity: .error, subject: "device \(device.id)", message: problem)
                                }
                                return Finding(severity: .ok, subject: "device \(device.id)",
                                               message: "answers on \(bus.id) unit \(device.unit) as \(device.profile.kind)")
                            } catch {
                                return Finding(severity: .error, subject: "device \(device.id)", message: "\(error)")
                            }
                        }
                    }) ?? []
                }
            }
            var all: [Finding] = []
            for await findings in group { all += findings }
            return all.sorted { $0.subject < $1.subject }
        }
    }

    /// nil when `host` resolves, else getaddrinfo's reason.
    static func resolve(_ host: String) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &result)
        if let result { freeaddrinfo(result) }
        return rc == 0 ? nil : String(cString: gai_strerror(rc))
    }
}

/// The user the daemon runs as, for permission checks made by another user (usually root): `accessgw` when it
/// exists, otherwise whoever runs the check.
public struct ServiceAccount: Sendable {
    public var name: String
    public var uid: uid_t
    public var groups: [gid_t]

    public enum Access: Sendable, Equatable {
        case allowed
        case denied(String)
    }

    /// The account named `name`, with its primary and supplementary groups; nil when there is none.
    public static func named(_ name: String) -> ServiceAccount? {
        guard let entry = getpwnam(name) else { return nil }
        let uid = entry.pointee.pw_uid, gid = entry.pointee.pw_gid
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, gid, &groups, &count)
        }
        return ServiceAccount(name: name, uid: uid, groups: Array(groups.prefix(Int(max(count, 0)))))
    }

    /// `accessgw` if it exists, else the current user.
    public static var `default`: ServiceAccount { named("accessgw") ?? current }

    /// The user this process runs as (the daemon's own view at start).
    public static var current: ServiceAccount {
        getpwuid(geteuid()).flatMap { named(String(cString: $0.pointee.pw_name)) }
            ?? ServiceAccount(name: "uid \(geteuid())", uid: geteuid(), groups: [getegid()])
    }

    /// Whether this account may read (and write) `path`, judged from the mode bits of the file and of every
    /// directory above it, as the kernel would for a process of this user (root may do anything).
    public func access(_ path: String, write: Bool) -> Access {
        var info = stat()
        guard stat(path, &info) == 0 else {
            return .denied(errno == ENOENT ? "\(path) does not exist" : "\(path): \(String(cString: strerror(errno)))")
        }
        if uid == 0 { return .allowed }
        var directory = (path as NSString).deletingLastPathComponent
        while !directory.isEmpty {
            var parent = stat()
            if stat(directory, &parent) == 0, !permits(parent, bit: 1) {
                return .denied("\(name) cannot reach \(path): directory \(directory) is \(Self.describe(parent)) (no search permission)")
            }
            if directory == "/" { break }
            directory = (directory as NSString).deletingLastPathComponent
        }
        let readable = permits(info, bit: 4), writable = !write || permits(info, bit: 2)
        guard readable && writable else {
            let wanted = write ? "readable and writable" : "readable"
            var hint = ""
            if !groups.contains(info.st_gid), let group = getgrgid(info.st_gid) {
                hint = "; add \(name) to group \(String(cString: group.pointee.gr_name)) or change the file's group"
            }
            return .denied("\(path) is not \(wanted) by \(name) (it is \(Self.describe(info))\(hint))")
        }
        return .allowed
    }

    /// Whether the owner, group or other permission bits that apply to this account include `bit` (4 r, 2 w, 1 x).
    func permits(_ info: stat, bit: mode_t) -> Bool {
        let mode = info.st_mode
        if info.st_uid == uid { return mode & (bit << 6) != 0 }
        if groups.contains(info.st_gid) { return mode & (bit << 3) != 0 }
        return mode & bit != 0
    }

    /// `0640 root:accessgw`.
    static func describe(_ info: stat) -> String {
        let owner = getpwuid(info.st_uid).map { String(cString: $0.pointee.pw_name) } ?? "\(info.st_uid)"
        let group = getgrgid(info.st_gid).map { String(cString: $0.pointee.gr_name) } ?? "\(info.st_gid)"
        return String(format: "%04o", info.st_mode & 0o7777) + " \(owner):\(group)"
    }
}
