/// A command of a map-2 profile (SPEC 3.5): one coil or holding register written with `value`, and with `pulse`
/// written back to `rest` after that time (a relay module opening a barrier or releasing a door strike).
public struct MapCommand: Sendable, Equatable {
    /// Its name in topics and requests, such as `open`.
    public var name: String
    /// `coils` (function 05 or 15) or `holding` (function 06 or 16).
    public var table: ModbusTable
    public var address: UInt16
    /// The write function: 05 or 15 for coils, 06 or 16 for holding registers.
    public var function: UInt8
    public var value: UInt16
    /// How long `value` stays before `rest` is written back, in milliseconds; nil for a plain write.
    public var pulseMilliseconds: Int64?
    /// The resting value a pulse restores (0 unless the profile says `rest:`).
    public var rest: UInt16
    /// Where it is written in the profile.
    public var line: Int

    public init(name: String, table: ModbusTable, address: UInt16, function: UInt8, value: UInt16,
                pulseMilliseconds: Int64? = nil, rest: UInt16 = 0, line: Int = 0) {
        self.name = name
        self.table = table
        self.address = address
        self.function = function
        self.value = value
        self.pulseMilliseconds = pulseMilliseconds
        self.rest = rest
        self.line = line
    }

    /// The write functions each writable table takes; the first is the default.
    public static func writeFunctions(of table: ModbusTable) -> [UInt8] {
        switch table {
        case .coils: [5, 15]
        case .holding: [6, 16]
        case .discreteInputs, .input: []
        }
    }
}

extension PolledMap {
    public func command(named name: String) -> MapCommand? { commands.first { $0.name == name } }

    /// `commands: { NAME: { write: { table, address, value, function }, pulse, rest } }`: a write goes only to a
    /// coil or holding register inside a block the profile declares (the profile says what the device has).
    static func parseCommands(_ value: YAMLValue, blocks: [MapBlock], log: ProblemLog) -> [MapCommand] {
        var commands: [MapCommand] = []
        for (name, spec) in value.mapping(log)?.entries ?? [] {
            guard let command = spec.mapping(log, allowed: ["write", "pulse", "rest"]),
                  let write = command.required("write", log)?.mapping(log, allowed: ["table", "address", "value", "function"]),
                  let tableValue = write.required("table", log), let table: ModbusTable = tableValue.choice(log),
                  let address = write.required("address", log)?.int(log, in: 0...65535) else { continue }
            guard name.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "_" }), !name.isEmpty else {
                log.report(at: spec, "command name '\(name)' must be lower-case letters, digits and _ (it is a topic level)")
                continue
            }
            let functions = MapCommand.writeFunctions(of: table)
            guard let defaultFunction = functions.first else {
                log.report(at: tableValue, "\(table.rawValue) are read-only: a command writes coils or holding registers")
                continue
            }
            guard blocks.contains(where: { $0.table == table && (Int($0.address)..<Int($0.address) + $0.count).contains(Int(address)) }) else {
                let declared = blocks.filter { $0.table == table }.map { "\($0.address)...\(Int($0.address) + $0.count - 1)" }
                log.report(at: write.owner, "\(table.rawValue) \(address) is not in a block of the profile, so not writable"
                           + " (declared \(table.rawValue): \(declared.isEmpty ? "none" : declared.joined(separator: ", ")))")
                continue
            }
            var function = defaultFunction
            if let functionValue = write["function"], let given = functionValue.int(log) {
                guard functions.contains(UInt8(clamping: given)) else {
                    log.report(at: functionValue, "\(table.rawValue) are written with function \(functions.map { String($0) }.joined(separator: " or ")), not \(given)")
                    continue
                }
                function = UInt8(given)
            }
            let range: ClosedRange<Int64> = table.holdsBits ? 0...1 : 0...65535
            guard let written = write.required("value", log)?.int(log, in: range) else { continue }
            let pulse = command["pulse"].flatMap { $0.milliseconds(log, in: 1...3_600_000) }
            if command["pulse"] != nil, pulse == nil { continue }
            var rest: Int64 = 0
            if let restValue = command["rest"] {
                guard pulse != nil else {
                    log.report(at: restValue, "rest is the value a pulse restores: it needs pulse")
                    continue
                }
                guard let parsed = restValue.int(log, in: range) else { continue }
                rest = parsed
            }
            if pulse != nil, rest == written {
                log.report(at: spec, "pulse writes \(written) and rests at \(rest): the pulse would change nothing")
                continue
            }
            if commands.contains(where: { $0.name == name }) {
                log.report(at: spec, "command \(name) is defined twice")
                continue
            }
            commands.append(MapCommand(name: name, table: table, address: UInt16(address), function: function,
                                       value: UInt16(written), pulseMilliseconds: pulse, rest: UInt16(rest), line: spec.line))
        }
        return commands
    }
}
