import AccessModel

extension DeviceProfile {
    /// Loads and validates a profile file; every problem is reported with file:line and key.
    public static func load(path: String) throws(ConfigurationError) -> DeviceProfile {
        let log = ProblemLog()
        let profile = YAMLValue.load(path: path, log: log).flatMap { parse($0, log: log) }
        try log.throwIfAny()
        return profile!
    }

    /// Parses a profile from YAML text (used for profiles embedded in tests and tools).
    public static func parse(_ text: String, file: String) throws(ConfigurationError) -> DeviceProfile {
        let log = ProblemLog()
        let profile = YAMLValue.parse(text, file: file, log: log).flatMap { parse($0, log: log) }
        try log.throwIfAny()
        return profile!
    }

    static func parse(_ root: YAMLValue, log: ProblemLog) -> DeviceProfile? {
        guard let top = root.mapping(log, allowed: [
            "profile", "kind", "description", "kind_code", "registers", "enums", "identity", "state", "commands",
            "event_log", "events",
        ] + PolledMap.topKeys) else { return nil }
        let name = top.required("profile", log)?.string(log) ?? ""
        let kind = top.required("kind", log)?.string(log) ?? ""
        var layout = WordLayout.modbusStandard
        if let registers = top["registers"]?.mapping(log, allowed: ["byte_order", "word_order"]) {
            layout.byteOrder = registers["byte_order"]?.choice(log) ?? .big
            layout.wordOrder = registers["word_order"]?.choice(log) ?? .highFirst
        }
        let enums = parseEnums(top["enums"], log: log)
        let identity = top["identity"].flatMap { parseBlock($0, extraKeys: ["clock"], enums: enums, log: log) }
        var clockRegister: UInt16?
        if let clock = top["identity"]?.mapping(ProblemLog())?["clock"] {
            clockRegister = clock.int(log, in: 0...65534).map { UInt16($0) }
        }
        let eventLog = top["event_log"].flatMap { parseEventLog($0, enums: enums, log: log) }
        var events: [UInt16: EventRule] = [:]
        if let eventsValue = top["events"] {
            if eventLog == nil {
                log.report(at: eventsValue, "events need an event_log to read them from")
            } else if let entries = eventsValue.mapping(log) {
                for (codeText, value) in entries.entries {
                    guard let code = UInt16(codeText) else {
                        log.report(at: value, "event codes are whole numbers 0...65535, found '\(codeText)'")
                        continue
                    }
                    if let rule = parseEventRule(value, code: code, enums: enums, log: log) { events[code] = rule }
                }
            }
        }
        return DeviceProfile(
            name: name, kind: kind, description: top["description"]?.string(log) ?? "",
            kindCode: top["kind_code"]?.int(log, in: 0...65535), layout: layout, identity: identity,
            clockRegister: clockRegister,
            state: top["state"].flatMap { value -> RegisterBlock? in
                if case .sequence = value.node { return nil }  // map version 2: names of fields in `blocks`
                return parseBlock(value, extraKeys: [], enums: enums, log: log)
            },
            commands: top["blocks"] != nil ? nil : top["commands"].flatMap { parseCommands($0, log: log) },  // map 2: writes
            eventLog: eventLog, events: events, map: PolledMap.parse(top, enums: enums, layout: layout, log: log), file: root.file)
    }

    static func parseEnums(_ value: YAMLValue?, log: ProblemLog) -> [String: [Int64: String]] {
        guard let entries = value?.mapping(log) else { return [:] }
        var enums: [String: [Int64: String]] = [:]
        for (name, table) in entries.entries {
            enums[name] = parseWordTable(table, log: log)
        }
        return enums
    }

    static func parseWordTable(_ value: YAMLValue, log: ProblemLog) -> [Int64: String] {
        var table: [Int64: String] = [:]
        for (codeText, word) in value.mapping(log)?.entries ?? [] {
            guard let code = Int64(codeText) else {
                log.report(at: word, "enum codes are whole numbers, found '\(codeText)'")
                continue
            }
            if let text = word.string(log) { table[code] = text }
        }
        return table
    }

    /// `{ 0: tamper, 3: clock_not_set }`: names of bits 0..<`bits`.
    static func parseBitNames(_ value: YAMLValue, bits count: Int, log: ProblemLog) -> [Int: String] {
        var bits: [Int: String] = [:]
        for (bit, word) in parseWordTable(value, log: log) {
            guard (0..<Int64(count)).contains(bit) else {
                log.report(at: value, "bit \(bit) is outside 0...\(count - 1)")
                continue
            }
            bits[Int(bit)] = word
        }
        return bits
    }

    static func parseBlock(_ value: YAMLValue, extraKeys: [String], enums: [String: [Int64: String]],
                           log: ProblemLog) -> RegisterBlock? {
        guard let block = value.mapping(log, allowed: ["address", "count", "fields"] + extraKeys),
              let address = block.required("address", log)?.int(log, in: 0...65535),
              let count = block.required("count", log)?.int(log, in: 1...125) else { return nil }
        if address + count > 65536 {
            log.report(at: block.owner, "registers \(address)...\(address + count - 1) run past the last Modbus address 65535")
            return nil
        }
        var fields: [FieldLayout] = []
        for (name, spec) in block.required("fields", log)?.mapping(log)?.entries ?? [] {
            guard let field = FieldLayout.parse(name: name, spec, enums: enums, log: log) else { continue }
            if Int(field.offset) + field.registerCount > count {
                log.report(at: spec, "offset \(field.offset) and \(field.registerCount) register(s) run past the block's \(count) registers")
                continue
            }
            fields.append(field)
        }
        return RegisterBlock(address: UInt16(address), count: UInt16(count), fields: fields)
    }

    /// `commands: { address, codes: { NAME: { code, argument: { name, type, min, max, default } } } }`.
    static func parseCommands(_ value: YAMLValue, log: ProblemLog) -> CommandBlock? {
        guard let block = value.mapping(log, allowed: ["address", "codes"]),
              let address = block.required("address", log)?.int(log, in: 0...65530) else { return nil }
        var commands: [CommandDefinition] = []
        for (name, spec) in block.required("codes", log)?.mapping(log)?.entries ?? [] {
            guard let command = spec.mapping(log, allowed: ["code", "argument"]),
                  let code = command.required("code", log)?.int(log, in: 1...65535) else { continue }
            guard name.utf8.allSatisfy({ (97...122).contains($0) || (48...57).contains($0) || $0 == 95 }),
                  let first = name.utf8.first, (97...122).contains(first) else {
                log.report(at: spec, "command name '\(name)' must be lower-case letters, digits and _ (it is a topic level)")
                continue
            }
            if let clash = commands.first(where: { $0.code == UInt16(code) }) {
                log.report(at: spec, "command \(name) has code \(code), already used by \(clash.name)")
                continue
            }
            var argument: CommandArgument?
            if let argValue = command["argument"] {
                guard let parsed = parseCommandArgument(argValue, log: log) else { continue }
                argument = parsed
            }
            commands.append(CommandDefinition(name: name, code: UInt16(code), argument: argument))
        }
        return CommandBlock(address: UInt16(address), commands: commands)
    }

    static func parseCommandArgument(_ value: YAMLValue, log: ProblemLog) -> CommandArgument? {
        guard let spec = value.mapping(log, allowed: ["name", "type", "min", "max", "default"]),
              let name = spec.required("name", log)?.string(log) else { return nil }
        let signed: Bool
        switch spec["type"]?.string(log) ?? "u16" {
        case "u16": signed = false
        case "i16": signed = true
        case let other:
            log.report(at: spec["type"] ?? value, "argument type '\(other)' is not one of u16, i16")
            return nil
        }
        let limits: ClosedRange<Int64> = signed ? -32768...32767 : 0...65535
        guard let minimum = spec["min"].map({ $0.int(log, in: limits) }) ?? limits.lowerBound,
              let maximum = spec["max"].map({ $0.int(log, in: limits) }) ?? limits.upperBound else { return nil }
        guard minimum <= maximum else {
            log.report(at: value, "argument \(name): min \(minimum) is above max \(maximum)")
            return nil
        }
        var defaultValue: Int64?
        if let fallback = spec["default"] {
            guard let n = fallback.int(log, in: minimum...maximum) else { return nil }
            defaultValue = n
        }
        return CommandArgument(name: name, signed: signed, range: minimum...maximum, defaultValue: defaultValue)
    }

    static func parseEventRule(_ value: YAMLValue, code: UInt16, enums: [String: [Int64: String]],
                               log: ProblemLog) -> EventRule? {
        guard let rule = value.mapping(log, allowed: ["type", "alarm", "set", "fields", "subject_field"]),
              let typeValue = rule.required("type", log), let type = typeValue.string(log) else { return nil }
        let typeShape = type.split(separator: ".", omittingEmptySubsequences: false)
        if typeShape.count < 2 || typeShape.contains(where: { $0.isEmpty || !$0.allSatisfy { $0.isLowercase || $0 == "_" } }) {
            log.report(at: typeValue, "'\(type)' is not an event type like access.granted (lower case words joined by dots)")
        }
        var constants: [(String, JSONValue)] = []
        for (name, constant) in rule["set"]?.mapping(log)?.entries ?? [] {
            guard let text = constant.string(log) else { continue }
            let json: JSONValue = switch text {
            case "true": .bool(true)
            case "false": .bool(false)
            default: Int64(text).map(JSONValue.int) ?? .string(text)
            }
            constants.append((name, json))
        }
        var fields: [(String, FieldSource)] = []
        for (name, sourceValue) in rule["fields"]?.mapping(log)?.entries ?? [] {
            guard let text = sourceValue.string(log) else { continue }
            switch FieldSource.parse(text, enums: enums) {
            case let .success(source): fields.append((name, source))
            case let .failure(error): log.report(at: sourceValue, error.message)
            }
        }
        var subjectField: FieldSource?
        if let spec = rule["subject_field"], let text = spec.string(log) {
            switch FieldSource.parse(text, enums: enums) {
            case let .success(source) where source.words != nil && source.role != .subject: subjectField = source
            case .success: log.report(at: spec, "subject_field takes a record field and the enum naming the subject's field, such as 'value as credential'")
            case let .failure(error): log.report(at: spec, error.message)
            }
        }
        return EventRule(code: code, type: type, alarm: rule["alarm"]?.bool(log) ?? false, constants: constants, fields: fields,
                         subjectField: subjectField)
    }
}
