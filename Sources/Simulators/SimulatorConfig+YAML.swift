import AccessModel
import DeviceProfiles

/// Reads a simulator config file (YAML) with the same reader and messages as the gateway configuration:
/// every unknown key and bad value is reported at once as `file:line: key.path: message`.
extension SimulatorConfig {
    /// Loads and validates the file at `path`.
    public static func load(path: String) throws(ConfigurationError) -> SimulatorConfig {
        let log = ProblemLog()
        let config = YAMLValue.load(path: path, log: log).flatMap { parse($0, log: log) }
        try log.throwIfAny()
        return config!
    }

    /// Parses YAML text; `file` names it in problems.
    public static func parse(yaml: String, file: String) throws(ConfigurationError) -> SimulatorConfig {
        let log = ProblemLog()
        let config = YAMLValue.parse(yaml, file: file, log: log).flatMap { parse($0, log: log) }
        try log.throwIfAny()
        return config!
    }

    static func parse(_ root: YAMLValue, log: ProblemLog) -> SimulatorConfig? {
        guard let top = root.mapping(log, allowed: ["seed", "devices"]) else { return nil }
        let seed = top["seed"]?.int(log, in: 0...Int64.max) ?? 1
        guard let list = top.required("devices", log), let items = list.sequence(log) else { return nil }
        if items.isEmpty { log.report(at: list, "needs at least one device") }
        let devices = items.compactMap { item in parseDevice(item, log: log).map { (device: $0, node: item) } }
        checkShared(devices, log: log)
        return SimulatorConfig(seed: UInt64(seed), devices: devices.map(\.device))
    }

    static let deviceKeys = ["kind", "unit", "tcp", "rtu", "serial", "firmware", "capacity", "frees_acknowledged", "boot_id", "latency",
                             "lock_release", "clock", "scenario", "faults", "profile", "actions"]

    /// One device entry; nil when it has any problem, so the shared-transport checks only see valid devices.
    static func parseDevice(_ value: YAMLValue, log: ProblemLog) -> Device? {
        let reported = log.problems.count
        guard let fields = value.mapping(log, allowed: deviceKeys) else { return nil }
        let kind = fields["profile"] == nil ? fields.required("kind", log).flatMap { parseKind($0, log: log) } : nil
        if fields["profile"] != nil, let kindValue = fields["kind"] {
            log.report(at: kindValue, "a device is either a map-1 kind or a map-2 profile, not both")
        }
        var transport: Transport?
        switch (fields["tcp"], fields["rtu"]) {
        case let (tcp?, nil): transport = parseTCP(tcp, log: log)
        case let (nil, rtu?): transport = parseRTU(rtu, log: log)
        default: log.report(at: value, "a device needs exactly one of tcp and rtu")
        }
        let unit = fields["unit"]?.int(log, in: 1...247) ?? 1
        var device = Device(kind: kind ?? .faceDoor, unit: UInt8(unit), transport: transport ?? .tcp(host: "", port: 0))
        device.serial = fields["serial"]?.string(log)
        if let value = fields["firmware"], let text = value.string(log) {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false).map { UInt16($0) }
            if parts.count == 2, let major = parts[0], let minor = parts[1] {
                device.firmware = UInt32(major) << 16 | UInt32(minor)
            } else {
                log.report(at: value, "'\(text)' is not a version major.minor (example: 2.4)")
            }
        }
        device.capacity = Int(fields["capacity"]?.int(log, in: 3...1_000_000) ?? 1000)
        device.freesAcknowledged = fields["frees_acknowledged"]?.bool(log) ?? false
        device.bootID = UInt16(fields["boot_id"]?.int(log, in: 1...65535) ?? 1)
        device.latencyMilliseconds = Int(fields["latency"]?.milliseconds(log) ?? 0)
        device.lockReleaseMilliseconds = Int(fields["lock_release"]?.milliseconds(log) ?? 5_000)
        if let clock = fields["clock"]?.mapping(log, allowed: ["offset", "synchronised"]) {
            device.clockOffsetSeconds = (clock["offset"]?.milliseconds(log, signed: true) ?? 0) / 1000
            device.clockSynchronised = clock["synchronised"]?.bool(log) ?? true
        }
        device.scenario = fields["scenario"].map { parseScenario($0, log: log) } ?? .idle
        if let faults = fields["faults"] { parseFaults(faults, into: &device, log: log) }
        if let profileValue = fields["profile"], let reference = profileValue.string(log) {
            do {
                let profile = try ProfileLibrary(directories: ProfileLibrary.defaultDirectories).profile(reference)
                if profile.map == nil {
                    log.report(at: profileValue, "profile \(reference) has no blocks (map version 2); serve map-1 devices with kind")
                } else {
                    device.profile = profile
                    device.actions = (fields["actions"]?.sequence(log) ?? []).compactMap { parseAction($0, map: profile.map!, log: log) }
                }
            } catch {
                log.report(at: profileValue, "\(error)")
            }
        } else if let actions = fields["actions"] {
            log.report(at: actions, "actions drive map-2 profiles; map-1 kinds take a scenario")
        }
        return log.problems.count == reported ? device : nil
    }

    static func parseKind(_ value: YAMLValue, log: ProblemLog) -> DeviceKind? {
        guard let text = value.string(log) else { return nil }
        guard let kind = DeviceKind(name: text) else {
            log.report(at: value, "'\(text)' is not one of \(DeviceKind.allCases.map(\.name).joined(separator: ", "))")
            return nil
        }
        return kind
    }

    static func parseTCP(_ value: YAMLValue, log: ProblemLog) -> Transport? {
        guard let fields = value.mapping(log, allowed: ["host", "port"]) else { return nil }
        let host = fields["host"].map { $0.string(log) } ?? "127.0.0.1"
        let port = fields.required("port", log)?.int(log, in: 0...65535)
        guard let host, let port else { return nil }
        return .tcp(host: host, port: UInt16(port))
    }

    static func parseRTU(_ value: YAMLValue, log: ProblemLog) -> Transport? {
        guard let fields = value.mapping(log, allowed: ["device", "baud", "parity", "data_bits", "stop_bits", "pace"])
        else { return nil }
        let path = fields.required("device", log)?.string(log)
        var settings = SerialLineSettings()
        settings.baud = Int(fields["baud"]?.int(log, in: 1200...230_400) ?? 9600)
        if let value = fields["parity"], let text = value.string(log) {
            // Lower case is accepted too (`parity: e`), as it always was in simulator configs.
            if let parity = SerialLineSettings.Parity(rawValue: text.uppercased()) {
                settings.parity = parity
            } else {
                log.report(at: value, "'\(text)' is not one of N, E, O")
            }
        }
        settings.dataBits = Int(fields["data_bits"]?.int(log, in: 7...8) ?? 8)
        settings.stopBits = Int(fields["stop_bits"]?.int(log, in: 1...2) ?? 1)
        settings.pace = fields["pace"]?.bool(log) ?? false
        return path.map { .rtu(path: $0, settings: settings) }
    }

    static func parseScenario(_ value: YAMLValue, log: ProblemLog) -> EventScenario {
        var scenario = EventScenario()
        guard let fields = value.mapping(log, allowed: ["rate", "burst", "backlog", "codes"]) else { return scenario }
        scenario.rate = fields["rate"]?.perSecond(log) ?? 0
        scenario.backlog = Int(fields["backlog"]?.int(log, in: 0...10_000_000) ?? 0)
        if let burst = fields["burst"]?.mapping(log, allowed: ["count", "every"]) {
            let count = burst.required("count", log)?.int(log, in: 1...100_000)
            let every = burst.required("every", log)
            let everyMilliseconds = every?.milliseconds(log)
            if let every, everyMilliseconds == 0 { log.report(at: every, "must be longer than 0ms") }
            if let count, let everyMilliseconds { scenario.burst = (Int(count), Int(everyMilliseconds)) }
        }
        if let codes = fields["codes"], let items = codes.sequence(log) {
            if items.isEmpty { log.report(at: codes, "needs at least one code") }
            scenario.codes = items.compactMap { $0.int(log, in: 1...65535).map(UInt16.init) }
        }
        return scenario
    }

    /// `{ every: 2s, add: { entries: 1 }, set: { result: 0, card: random }, stamp: time, for: 1s, burst: 7 }`.
    static func parseAction(_ value: YAMLValue, map: PolledMap, log: ProblemLog) -> MapAction? {
        guard let fields = value.mapping(log, allowed: ["every", "add", "set", "stamp", "for", "burst"]),
              let every = fields.required("every", log)?.milliseconds(log) else { return nil }
        if every == 0 { log.report(at: fields["every"]!, "must be longer than 0ms") }
        func numeric(_ name: String, _ at: YAMLValue) -> Bool {
            guard let index = map.field(named: name) else {
                log.report(at: at, "no field named '\(name)' in the profile (fields: \(map.fields.map(\.name).joined(separator: ", ")))")
                return false
            }
            guard map.fields[index].isInteger else {
                log.report(at: at, "\(name) is \(map.fields[index].type.rawValue), not a whole number")
                return false
            }
            return true
        }
        var action = MapAction(everyMilliseconds: Int(every))
        for (name, amount) in fields["add"]?.mapping(log)?.entries ?? [] where numeric(name, amount) {
            if let n = amount.int(log) { action.add.append((name, n)) }
        }
        for (name, v) in fields["set"]?.mapping(log)?.entries ?? [] where numeric(name, v) {
            if v.string(ProblemLog()) == "random" { action.set.append((name, .random)) } else if let n = v.int(log) {
                action.set.append((name, .number(n)))
            }
        }
        if let stampValue = fields["stamp"], let name = stampValue.string(log) {
            if let index = map.field(named: name), map.fields[index].type == .bcdTime || { if case .unixTime = map.fields[index].presentation { true } else { false } }() {
                action.stamp = name
            } else {
                log.report(at: stampValue, "'\(name)' is not a time field of the profile (bcd_time, or format unix_time)")
            }
        }
        action.holdMilliseconds = fields["for"]?.milliseconds(log).map(Int.init)
        action.burst = Int(fields["burst"]?.int(log, in: 1...100_000) ?? 1)
        return action
    }

    static func parseFaults(_ value: YAMLValue, into device: inout Device, log: ProblemLog) {
        guard let fields = value.mapping(log, allowed: [
            "delay", "no_reply", "exception", "exception_probability", "corrupt_crc", "drop_connection_after",
            "reboot_after", "overflow", "read_only_clock", "failing_state_block", "garbled_window_count",
            "flapping_boot_id", "window_gap", "refuse_function_23", "ignore_function_23", "garble_function_23", "function_23_skips_log", "reply_unit", "trailing_bytes", "padded_reply_bytes",
            "ignore_command_writes",
        ]) else { return }
        var faults = DeviceFaults()
        faults.delayMilliseconds = Int(fields["delay"]?.milliseconds(log) ?? 0)
        faults.noReplyProbability = fields["no_reply"]?.probability(log) ?? 0
        faults.exceptionCode = fields["exception"]?.int(log, in: 1...255).map(UInt8.init)
        faults.exceptionProbability = fields["exception_probability"]?.probability(log) ?? 1
        faults.corruptCRCProbability = fields["corrupt_crc"]?.probability(log) ?? 0
        faults.dropConnectionAfter = fields["drop_connection_after"]?.int(log, in: 1...Int64(Int32.max)).map(Int.init)
        faults.readOnlyClock = fields["read_only_clock"]?.bool(log) ?? false
        faults.failingStateBlock = fields["failing_state_block"]?.bool(log) ?? false
        faults.garbledWindowCount = fields["garbled_window_count"]?.int(log, in: 0...65535).map(UInt16.init)
        faults.flappingBootID = fields["flapping_boot_id"]?.bool(log) ?? false
        faults.windowGap = fields["window_gap"]?.bool(log) ?? false
        faults.refuseFunction23 = fields["refuse_function_23"]?.bool(log) ?? false
        faults.ignoreFunction23 = fields["ignore_function_23"]?.bool(log) ?? false
        faults.garbleFunction23 = fields["garble_function_23"]?.bool(log) ?? false
        faults.function23SkipsLog = fields["function_23_skips_log"]?.bool(log) ?? false
        faults.replyUnit = fields["reply_unit"]?.int(log, in: 0...255).map(UInt8.init)
        faults.trailingBytes = Int(fields["trailing_bytes"]?.int(log, in: 0...250) ?? 0)
        faults.paddedReplyBytes = Int(fields["padded_reply_bytes"]?.int(log, in: 0...40) ?? 0)
        faults.ignoreCommandWrites = fields["ignore_command_writes"]?.bool(log) ?? false
        device.faults = faults
        device.rebootAfterMilliseconds = fields["reboot_after"]?.milliseconds(log).map(Int.init)
        device.overflow = Int(fields["overflow"]?.int(log, in: 0...10_000_000) ?? 0)
    }

    /// Devices sharing a transport need distinct units, and an RTU line one set of line settings.
    static func checkShared(_ devices: [(device: Device, node: YAMLValue)], log: ProblemLog) {
        var units: [String: String] = [:]
        var lines: [String: (settings: SerialLineSettings, owner: String)] = [:]
        for (device, node) in devices {
            let place: String
            switch device.transport {
            case let .tcp(host, port):
                place = "tcp \(host):\(port)"
            case let .rtu(path, settings):
                place = "rtu \(path)"
                if let first = lines[path], first.settings != settings {
                    log.report(at: node, "\(place) is configured as \(settings) here but as \(first.settings) by \(first.owner)")
                }
                if lines[path] == nil { lines[path] = (settings, node.path) }
            }
            guard !device.transport.isEphemeralTCP else { continue }
            if let other = units["\(place) unit \(device.unit)"] {
                log.report(at: node, "unit \(device.unit) on \(place) is already taken by \(other)")
            } else {
                units["\(place) unit \(device.unit)"] = node.path
            }
        }
    }
}

extension SimulatorConfig.Transport {
    /// TCP port 0: every such device gets its own kernel-chosen port, so units may repeat.
    var isEphemeralTCP: Bool {
        if case let .tcp(_, port) = self { return port == 0 }
        return false
    }
}
