import AccessModel
import BusPolling
import DeviceProfiles
import Foundation
import ModbusTransport

extension GatewayConfiguration {
    static func parseBus(_ value: YAMLValue, log: ProblemLog) -> BusConfiguration? {
        guard let bus = value.mapping(log, allowed: ["id", "tcp", "rtu", "timeout", "turnaround"]),
              let id = bus.required("id", log).flatMap({ identifier($0, log) }) else { return nil }
        let timeout = bus["timeout"]?.milliseconds(log, in: 1...60_000) ?? 300
        let turnaround = bus["turnaround"]?.milliseconds(log, in: 0...10_000) ?? 0
        switch (bus["tcp"], bus["rtu"]) {
        case let (tcp?, nil):
            guard let fields = tcp.mapping(log, allowed: ["host", "port"]),
                  let hostValue = fields.required("host", log), let host = hostName(hostValue, log) else { return nil }
            let port = fields["port"]?.int(log, in: 1...65535) ?? 502
            return BusConfiguration(id: id, endpoint: .tcp(host: host, port: Int(port)), timeoutMillis: timeout, turnaroundMillis: turnaround)
        case let (nil, rtu?):
            guard let fields = rtu.mapping(log, allowed: ["device", "baud", "parity", "data_bits", "stop_bits", "rs485"]),
                  let device = fields.required("device", log)?.string(log) else { return nil }
            let line = SerialLine(
                device: device, baud: Int(fields["baud"].flatMap { standardBaud($0, log: log) } ?? 9600),
                parity: fields["parity"]?.choice(log) ?? .none, dataBits: Int(fields["data_bits"]?.int(log, in: 5...8) ?? 8),
                stopBits: Int(fields["stop_bits"]?.int(log, in: 1...2) ?? 1), rs485: fields["rs485"].flatMap { parseRS485($0, log: log) })
            return BusConfiguration(id: id, endpoint: .rtu(line), timeoutMillis: timeout, turnaroundMillis: turnaround)
        default:
            log.report(at: value, "bus '\(id)' needs exactly one of tcp and rtu")
            return nil
        }
    }

    /// `rs485: { rts: up|down, delay_before: 1ms, delay_after: 1ms }`. libmodbus holds RTS for one delay before
    /// the first byte and after the last, so the two delays, when both given, must agree.
    static func parseRS485(_ value: YAMLValue, log: ProblemLog) -> RS485? {
        guard let fields = value.mapping(log, allowed: ["rts", "delay_before", "delay_after"]),
              let rts: RS485.RTS = fields.required("rts", log)?.choice(log) else { return nil }
        let before = fields["delay_before"]?.milliseconds(log)
        let after = fields["delay_after"]?.milliseconds(log)
        for case let (key, delay?) in [("delay_before", before), ("delay_after", after)] where delay > 1000 {
            log.report(at: fields[key]!, "an RTS delay of \(delay)ms is longer than any reply takes to start (at most 1s)")
            return nil
        }
        if let before, let after, before != after {
            log.report(at: fields["delay_after"]!, "delay_after (\(after)ms) must equal delay_before (\(before)ms): libmodbus holds RTS for one delay on both sides of a frame")
            return nil
        }
        return RS485(rts: rts, delayMicros: (before ?? after).map { Int($0) * 1000 })
    }

    static func parseDevice(_ value: YAMLValue, buses: [BusConfiguration], library: ProfileLibrary,
                            log: ProblemLog) -> (device: Device, node: YAMLValue)? {
        guard let device = value.mapping(log, allowed: ["id", "profile", "bus", "unit", "poll", "state_poll", "time_sync", "location"]),
              let id = device.required("id", log).flatMap({ identifier($0, log) }),
              let profileValue = device.required("profile", log), let reference = profileValue.string(log),
              let busValue = device.required("bus", log), let bus = busValue.string(log),
              let unit = device.required("unit", log)?.int(log, in: 1...247) else { return nil }
        if !buses.contains(where: { $0.id == bus }) {
            log.report(at: busValue, "no bus named '\(bus)' (buses: \(buses.map(\.id).joined(separator: ", ")))")
        }
        let profile: DeviceProfile
        do { profile = try library.profile(reference) } catch {
            switch error {
            case .notFound: log.report(at: profileValue, error.description)
            case let .invalid(problems): for problem in problems.problems { log.report(problem.file, problem.line, problem.key, problem.message) }
            }
            return nil
        }
        var location: [(String, String)] = []
        for (key, place) in device["location"]?.mapping(log)?.entries ?? [] {
            if let text = place.string(log) { location.append((key, text)) }
        }
        let poll = device["poll"]?.milliseconds(log, in: 0...86_400_000) ?? 200
        if poll < 10 { log.report(at: device["poll"]!, "poll below 10ms would saturate the bus") }
        return (Device(id: id, profile: profile, bus: bus, unit: UInt8(unit), pollMillis: max(poll, 10),
                       statePollMillis: max(device["state_poll"]?.milliseconds(log, in: 10...86_400_000) ?? 1000, 10),
                       timeSync: device["time_sync"]?.bool(log) ?? false, location: location,
                       profileSource: library.source(ofFile: profile.file)), value)
    }

    /// Serial adapters and RS-485 devices run at the standard rates only; 9601 is a typo, not a speed.
    static let standardBauds = [1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200, 230400, 460800, 921600]

    static func standardBaud(_ value: YAMLValue, log: ProblemLog) -> Int? {
        guard let baud = value.int(log) else { return nil }
        guard standardBauds.contains(Int(baud)) else {
            log.report(at: value, "\(baud) is not a standard baud rate (\(standardBauds.map(String.init).joined(separator: ", ")))")
            return nil
        }
        return Int(baud)
    }

    static func parsePrivacy(_ value: YAMLValue, log: ProblemLog) -> Privacy {
        var privacy = Privacy()
        guard let fields = value.mapping(log, allowed: ["person_ids", "plates", "key_file", "key_version"]) else { return privacy }
        privacy.keyVersion = Int(fields["key_version"]?.int(log, in: 1...9999) ?? 1)
        privacy.personIDs = fields["person_ids"]?.choice(log) ?? .plain
        privacy.plates = fields["plates"]?.choice(log) ?? .plain
        if privacy.personIDs == .pseudonymise || privacy.plates == .pseudonymise {
            privacy.keyFile = fields["key_file"]?.string(ProblemLog())
            if let keyFile = fields.required("key_file", log), let key = keyBytes(keyFile, log: log) {
                if key.isEmpty { log.report(at: keyFile, "the privacy key file is empty") }
                privacy.key = key
            }
        }
        return privacy
    }

    /// The default client id names the site too: gateway ids such as `gw-01` repeat across compounds, and two
    /// clients with one id on a shared broker take each other's session over for ever.
    static func parseMQTT(_ value: YAMLValue?, site: String, gatewayID: String, log: ProblemLog) -> MQTT {
        var mqtt = MQTT(clientID: "accessgw-\(site)-\(gatewayID)")
        guard let value, let fields = value.mapping(log, allowed: [
            "host", "port", "tls", "username", "password_file", "client_id", "protocol", "qos", "keepalive",
            "topic_prefix", "max_inflight", "session_expiry",
        ]) else { return mqtt }
        mqtt.host = fields["host"].flatMap { hostName($0, log) } ?? mqtt.host
        if let tls = fields["tls"]?.mapping(log, allowed: ["ca_file", "cert_file", "key_file"]) {
            mqtt.caFile = readableFile(tls["ca_file"], log: log)
            mqtt.certFile = readableFile(tls["cert_file"], log: log)
            mqtt.keyFile = readableFile(tls["key_file"], log: log)
            if (mqtt.certFile == nil) != (mqtt.keyFile == nil) {
                log.report(at: tls.owner, "cert_file and key_file go together")
            }
        }
        mqtt.port = Int(fields["port"]?.int(log, in: 1...65535) ?? (fields["tls"] == nil ? 1883 : 8883))
        mqtt.username = fields["username"]?.string(log)
        mqtt.password = fields["password_file"].flatMap { secret($0, log: log) }
        mqtt.passwordFile = fields["password_file"]?.string(ProblemLog())
        if let value = fields["client_id"], let id = value.string(log) {
            // libmosquitto refuses an id that is empty or not UTF-8; a broker's ACL patterns (%c) break on / + #.
            if id.isEmpty || id.utf8.count > 65535 || id.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
                || id.contains(where: { "/+#".contains($0) }) {
                log.report(at: value, "client_id must be 1-65535 bytes without control characters, '/', '+' or '#'")
            } else {
                mqtt.clientID = id
            }
        }
        mqtt.protocolVersion = fields["protocol"]?.choice(log) ?? .v5
        mqtt.qos = Int(fields["qos"]?.int(log, in: 1...1) ?? 1)
        // MQTT carries the keepalive as 16-bit seconds; libmosquitto refuses below 5 s and would never connect.
        mqtt.keepaliveSeconds = Int((fields["keepalive"]?.milliseconds(log, in: 5000...65_535_000) ?? 30_000) / 1000)
        if let prefix = fields["topic_prefix"] {
            mqtt.topicPrefix = prefix.string(log) ?? mqtt.topicPrefix
            let text = mqtt.topicPrefix
            if text.isEmpty || text.contains(where: { "#+".contains($0) }) || text.hasPrefix("$")
                || text.split(separator: "/", omittingEmptySubsequences: false).contains(where: \.isEmpty)
                || text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                log.report(at: prefix, "topic_prefix must be topic levels without wildcards (# +), empty levels, control "
                           + "characters or a leading '$' (reserved for the broker, as in $SYS)")
            }
        }
        mqtt.maxInflight = Int(fields["max_inflight"]?.int(log, in: 1...65535) ?? 100)
        if let value = fields["session_expiry"] {
            // Whole seconds, as MQTT 5 carries it (u32; 0xFFFFFFFF would mean never).
            mqtt.sessionExpirySeconds = UInt32((value.milliseconds(log, in: 0...4_294_967_294_000) ?? 0) / 1000)
            if mqtt.sessionExpirySeconds > 0, mqtt.protocolVersion != .v5 {
                log.report(at: value, "session_expiry needs MQTT 5; mqtt.protocol is \(mqtt.protocolVersion.rawValue)")
            }
        }
        return mqtt
    }

    /// A host name or address for a connection: not empty, no spaces or control characters.
    static func hostName(_ value: YAMLValue, _ log: ProblemLog) -> String? {
        guard let host = value.string(log) else { return nil }
        guard !host.isEmpty, !host.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control })
        else {
            log.report(at: value, "'\(host)' is not a host name or address")
            return nil
        }
        return host
    }

    static func parseMetrics(_ value: YAMLValue?, log: ProblemLog) -> (host: String, port: Int)? {
        guard let value, let fields = value.mapping(log, allowed: ["listen"]) else { return ("127.0.0.1", 9464) }
        guard let listenValue = fields["listen"], let listen = listenValue.string(log) else { return ("127.0.0.1", 9464) }
        if listen == "off" { return nil }
        var address = in_addr()
        guard let endpoint = HostPort(listen), endpoint.port > 0,
              endpoint.host == "localhost" || inet_pton(AF_INET, endpoint.host, &address) == 1 else {
            log.report(at: listenValue, "'\(listen)' is not IPV4-ADDRESS:PORT (e.g. 127.0.0.1:9464, 0.0.0.0:9464) or off")
            return nil
        }
        return (endpoint.host, Int(endpoint.port))
    }
}
