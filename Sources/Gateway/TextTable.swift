import AccessModel
/// Left-aligned columns for terminal tables (`check`, `status`).
public struct TextTable {
    public var header: [String]
    public var rows: [[String]] = []

    public init(_ header: [String]) { self.header = header }

    public mutating func add(_ row: [String]) { rows.append(row) }

    public var rendered: String {
        let all = ([header] + rows).map { $0.map(TerminalText.escaped) }
        let widths = header.indices.map { column in all.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column] + 2, withPad: " ", startingAt: 0)
            }.joined()
        }.joined(separator: "\n")
    }
}

extension GatewayConfiguration {
    /// The device table `accessgw check` prints.
    public var deviceTable: String {
        var table = TextTable(["DEVICE", "PROFILE", "KIND", "BUS", "ENDPOINT", "UNIT", "POLL", "STATE", "TIME SYNC", "LOCATION"])
        for device in devices {
            let endpoint = buses.first { $0.id == device.bus }.map { "\($0.endpoint)" } ?? "?"
            table.add([device.id, device.profile.name, device.profile.kind, device.bus, endpoint, "\(device.unit)",
                       DurationText.format(milliseconds: device.pollMillis), DurationText.format(milliseconds: device.statePollMillis),
                       device.timeSync ? "yes" : "no", device.location.map { "\($0.0) \($0.1)" }.joined(separator: ", ")])
        }
        return table.rendered
    }

    /// One line: what the file configures.
    public var summary: String {
        "gateway \(gatewayID), site \(site), \(buses.count) bus(es), \(devices.count) device(s), "
            + "broker \(mqtt.host):\(mqtt.port)\(mqtt.caFile != nil ? " (TLS)" : ""), journal \(journalPath)"
    }
}
