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
        ]) else { return nil }
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
            state: top["state"].flatMap { parseBlock($0, extraKeys: [], enums: enums, log: log) },
            commands: top["commands"].flatMap { parseCommands($0, log: log) },
            eventLog: eventLog, events: events, file: root.file)
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

    static func parseBlock(_ value: YAMLValue, extraKeys: [String], enums: [String: [Int64: String]],
                           log: ProblemLog) -> RegisterBlock? {
        guard let block = value.mapping(log, allowed: ["address", "count", "fields"] + extraKeys),
              let address = block.required("address", log)?.int(log, in: 0...65535),
              let count = block.required("count", log)?.int(log, in: 1...125) else { return nil }
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

    static func parseCommands(_ value: YAMLValue, log: ProblemLog) -> CommandBlock? {
        guard let block = value.mapping(log, allowed: ["address", "codes"]),
              let address = block.required("address", log)?.int(log, in: 0...65532) else { return nil }
        var commands: [(name: String, code: UInt16, argument: String?)] = []
        for (name, spec) in block.required("codes", log)?.mapping(log)?.entries ?? [] {
            guard let command = spec.mapping(log, allowed: ["code", "argument"]),
                  let code = command.required("code", log)?.int(log, in: 1...65535) else { continue }
            commands.append((name, UInt16(code), command["argument"]?.string(log)))
        }
        return CommandBlock(address: UInt16(address), commands: commands)
    }

    static func parseEventRule(_ value: YAMLValue, code: UInt16, enums: [String: [Int64: String]],
                               log: ProblemLog) -> EventRule? {
        guard let rule = value.mapping(log, allowed: ["type", "alarm", "set", "fields"]),
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
        return EventRule(code: code, type: type, alarm: rule["alarm"]?.bool(log) ?? false, constants: constants, fields: fields)
    }
}
