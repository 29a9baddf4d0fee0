import AccessModel
import DeviceProfiles
import ModbusTransport

extension DeviceProbe {
    /// Where a probed device sits, as the report's `bus` line shows it: "b3-rs485 /dev/ttyUSB0 unit 3".
    public static func busLabel(bus: String, endpoint: BusEndpoint, unit: UInt8) -> String {
        "\(bus == endpoint.description ? "" : bus + " ")\(endpoint) unit \(unit)"
    }
}

extension DeviceProbe.Report {
    /// The report as aligned lines for a terminal.
    public func rendered(profile: DeviceProfile, device: String, bus: String) -> String {
        var lines: [String] = []
        func row(_ label: String, _ text: String) {
            lines.append(label.padding(toLength: 10, withPad: " ", startingAt: 0) + TerminalText.escaped(text))
        }
        row("device", "\(device)  profile \(profile.name) (\(profile.kind))")
        row("bus", bus)
        if !identity.isEmpty {
            var text = Self.words(identity)
            if let offset = clockOffsetSeconds {
                text += abs(offset) > 5 ? "  (clock off by \(offset)s)" : "  (clock in sync)"
            }
            row("identity", text)
        }
        if !state.isEmpty { row("state", Self.words(state)) }
        if let header {
            var flags: [String] = []
            if header.overwroteSinceAck { flags.append("overwritten") }
            if header.nearlyFull { flags.append("nearly full") }
            if header.clockUnsynchronised { flags.append("clock not synchronised") }
            row("events", "head_seq \(header.headSeq), tail_seq \(header.tailSeq), boot_id \(header.bootID), "
                + "ack_seq \(header.ackSeq), unread \(header.unread)" + (flags.isEmpty ? "" : ", " + flags.joined(separator: ", ")))
        }
        for event in window {
            guard case let .device(_, seq) = event.origin else { continue }
            let fields = event.fields.map { "\($0.0) \(Self.text($0.1))" }.joined(separator: ", ")
            row("", "#\(seq) \(event.time.rfc3339) \(event.type)\(event.alarm ? " (alarm)" : "")  \(fields)")
        }
        for block in blocks { row("read", block) }
        for rule in rules { row("rule", rule) }
        for problem in problems { row("problem", problem) }
        return lines.joined(separator: "\n")
    }

    static func words(_ fields: [(String, JSONValue)]) -> String {
        fields.map { "\($0.0) \(text($0.1))" }.joined(separator: ", ")
    }

    static func text(_ value: JSONValue) -> String {
        switch value {
        case let .string(s): s
        case let .array(items): items.isEmpty ? "none" : items.map(text).joined(separator: "+")
        default: value.serialized
        }
    }
}
