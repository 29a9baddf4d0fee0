import Yams

/// The device entries of a simulator config: kind, unit, transport, scenario, faults.
extension ConfigReader {
    static let deviceKeys: Set<String> = ["kind", "unit", "tcp", "rtu", "serial", "firmware", "capacity", "boot_id",
                                          "latency", "clock", "scenario", "faults"]

    func device(_ node: Node) throws(SimulatorConfigError) -> SimulatorConfig.Device {
        let map = try mapping(node, "a device", allowed: Self.deviceKeys)
        guard let kindNode = map["kind"] else { throw error(node, "device is missing 'kind'") }
        let kindName = try string(kindNode, "kind")
        guard let kind = DeviceKind(name: kindName) else {
            throw error(kindNode, "unknown kind '\(kindName)' (face-door, plate-reader, elevator)")
        }
        let unit = try map["unit"].map { (n) throws(SimulatorConfigError) in try integer(n, "unit", in: 1...247) } ?? 1
        let transport: SimulatorConfig.Transport
        switch (map["tcp"], map["rtu"]) {
        case let (tcp?, nil): transport = try self.tcp(tcp)
        case let (nil, rtu?): transport = try self.rtu(rtu)
        default: throw error(node, "device needs exactly one of 'tcp' or 'rtu'")
        }
        var device = SimulatorConfig.Device(kind: kind, unit: UInt8(unit), transport: transport)
        device.line = node.mark?.line ?? 0
        if let n = map["serial"] { device.serial = try string(n, "serial") }
        if let n = map["firmware"] {
            let parts = try string(n, "firmware").split(separator: ".").compactMap { UInt16($0) }
            guard parts.count == 2 else { throw error(n, "'firmware' must be major.minor such as 1.4") }
            device.firmware = UInt32(parts[0]) << 16 | UInt32(parts[1])
        }
        if let n = map["capacity"] { device.capacity = try integer(n, "capacity", in: 3...1_000_000) }
        if let n = map["boot_id"] { device.bootID = UInt16(try integer(n, "boot_id", in: 1...65535)) }
        if let n = map["latency"] { device.latencyMilliseconds = Int(try milliseconds(n, "latency")) }
        if let n = map["clock"] {
            let clock = try mapping(n, "'clock'", allowed: ["offset", "synchronised"])
            if let o = clock["offset"] { device.clockOffsetSeconds = try milliseconds(o, "offset", signed: true) / 1000 }
            if let s = clock["synchronised"] { device.clockSynchronised = try bool(s, "synchronised") }
        }
        if let n = map["scenario"] { device.scenario = try scenario(n) }
        if let n = map["faults"] { try faults(n, into: &device) }
        return device
    }

    func tcp(_ node: Node) throws(SimulatorConfigError) -> SimulatorConfig.Transport {
        let map = try mapping(node, "'tcp'", allowed: ["host", "port"])
        let host = try map["host"].map { (n) throws(SimulatorConfigError) in try string(n, "host") } ?? "127.0.0.1"
        guard let portNode = map["port"] else { throw error(node, "'tcp' is missing 'port'") }
        return .tcp(host: host, port: UInt16(try integer(portNode, "port", in: 0...65535)))
    }

    func rtu(_ node: Node) throws(SimulatorConfigError) -> SimulatorConfig.Transport {
        let map = try mapping(node, "'rtu'", allowed: ["device", "baud", "parity", "data_bits", "stop_bits", "pace"])
        guard let path = map["device"] else { throw error(node, "'rtu' is missing 'device'") }
        var settings = SerialLineSettings()
        if let n = map["baud"] { settings.baud = try integer(n, "baud", in: 1200...230_400) }
        if let n = map["parity"] {
            guard let parity = SerialLineSettings.Parity(rawValue: try string(n, "parity").uppercased()) else {
                throw error(n, "'parity' must be N, E or O")
            }
            settings.parity = parity
        }
        if let n = map["data_bits"] { settings.dataBits = try integer(n, "data_bits", in: 7...8) }
        if let n = map["stop_bits"] { settings.stopBits = try integer(n, "stop_bits", in: 1...2) }
        if let n = map["pace"] { settings.pace = try bool(n, "pace") }
        return .rtu(path: try string(path, "device"), settings: settings)
    }

    func scenario(_ node: Node) throws(SimulatorConfigError) -> EventScenario {
        let map = try mapping(node, "'scenario'", allowed: ["rate", "burst", "backlog", "codes"])
        var scenario = EventScenario()
        if let n = map["rate"] { scenario.rate = try rate(n, "rate") }
        if let n = map["backlog"] { scenario.backlog = try integer(n, "backlog", in: 0...10_000_000) }
        if let n = map["burst"] {
            let burst = try mapping(n, "'burst'", allowed: ["count", "every"])
            guard let count = burst["count"], let every = burst["every"] else {
                throw error(n, "'burst' needs 'count' and 'every'")
            }
            let ms = try milliseconds(every, "every")
            guard ms > 0 else { throw error(every, "'every' must be longer than 0ms") }
            scenario.burst = (try integer(count, "count", in: 1...100_000), Int(ms))
        }
        if let n = map["codes"] {
            guard case let .sequence(items) = n, !items.isEmpty else { throw error(n, "'codes' must be a list") }
            var codes: [UInt16] = []
            for item in items { codes.append(UInt16(try integer(item, "codes", in: 1...65535))) }
            scenario.codes = codes
        }
        return scenario
    }

    func faults(_ node: Node, into device: inout SimulatorConfig.Device) throws(SimulatorConfigError) {
        let map = try mapping(node, "'faults'", allowed: ["delay", "no_reply", "exception", "exception_probability",
                                                          "corrupt_crc", "drop_connection_after", "reboot_after",
                                                          "overflow"])
        var f = DeviceFaults()
        if let n = map["delay"] { f.delayMilliseconds = Int(try milliseconds(n, "delay")) }
        if let n = map["no_reply"] { f.noReplyProbability = try probability(n, "no_reply") }
        if let n = map["exception"] { f.exceptionCode = UInt8(try integer(n, "exception", in: 1...255)) }
        if let n = map["exception_probability"] { f.exceptionProbability = try probability(n, "exception_probability") }
        if let n = map["corrupt_crc"] { f.corruptCRCProbability = try probability(n, "corrupt_crc") }
        if let n = map["drop_connection_after"] {
            f.dropConnectionAfter = try integer(n, "drop_connection_after", in: 1...Int(Int32.max))
        }
        if let n = map["reboot_after"] { device.rebootAfterMilliseconds = Int(try milliseconds(n, "reboot_after")) }
        if let n = map["overflow"] { device.overflow = try integer(n, "overflow", in: 0...10_000_000) }
        device.faults = f
    }

    /// Devices sharing a transport need distinct units, and an RTU line one set of line settings.
    func checkShared(_ devices: [SimulatorConfig.Device]) throws(SimulatorConfigError) {
        var seen: [String: (unit: Set<UInt8>, settings: SerialLineSettings?)] = [:]
        for device in devices {
            let key: String
            var settings: SerialLineSettings?
            switch device.transport {
            case let .tcp(host, port): key = "tcp \(host):\(port)"
            case let .rtu(path, s): key = "rtu \(path)"; settings = s
            }
            var entry = seen[key] ?? ([], settings)
            if entry.unit.contains(device.unit) && !(device.transport.isEphemeralTCP) {
                throw SimulatorConfigError(file: file, line: device.line, "unit \(device.unit) appears twice on \(key)")
            }
            if let settings, let first = entry.settings, first != settings {
                throw SimulatorConfigError(file: file, line: device.line,
                                           "\(key) is configured as \(first) and as \(settings)")
            }
            entry.unit.insert(device.unit)
            seen[key] = entry
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
