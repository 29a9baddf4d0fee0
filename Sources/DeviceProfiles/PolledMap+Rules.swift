import AccessModel

extension PolledMap {
    static let ruleKeys = ["on", "where", "type", "alarm", "set", "fields", "codes"]
    static let defaultMaxStep: Int64 = 10_000

    /// Parses one event rule; a rule that names a missing field or can never fire is a problem at its line.
    static func parseRule(_ value: YAMLValue, map: PolledMap, log: ProblemLog) -> MapRule? {
        guard let spec = value.mapping(log, allowed: ruleKeys), let onValue = spec.required("on", log),
              let on = onValue.mapping(log, allowed: ["change", "counter", "latest", "bit", "from", "to", "code", "time", "max_step"])
        else { return nil }
        let kinds = ["change", "counter", "latest"].filter { on[$0] != nil }
        guard kinds.count == 1 else {
            log.report(at: onValue, kinds.isEmpty ? "say what the rule follows: change, counter or latest"
                : "one rule follows one thing, not \(kinds.joined(separator: " and "))")
            return nil
        }
        let kind = kinds[0]
        let allowedModifiers: [String: [String]] = ["change": ["bit", "from", "to"], "counter": ["max_step"],
                                                    "latest": ["code", "time", "max_step"]]
        for (key, v) in on.entries where key != kind && !allowedModifiers[kind]!.contains(key) {
            log.report(at: v, "\(kind) rules do not take \(key)")
        }
        guard let watched = fieldIndex(on[kind]!, map: map, log: log) else { return nil }
        let field = map.fields[watched]
        guard field.isInteger else {
            log.report(at: on[kind]!, "\(field.name) is \(field.type.rawValue); rules follow whole-number fields, so this rule can never fire")
            return nil
        }
        var problems = false
        func maxStep() -> UInt64 {
            UInt64(on["max_step"]?.int(log, in: 1...Int64.max) ?? defaultMaxStep)
        }
        let trigger: MapRule.Trigger
        switch kind {
        case "change":
            var bit: Int?
            if let bitValue = on["bit"] {
                let width = field.type == .bits ? field.bitCount : field.type == .bit ? 1 : field.span * 16
                guard let b = bitValue.int(log, in: 0...63) else { return nil }
                if b >= width {
                    log.report(at: bitValue, "\(field.name) has \(width) bit(s); bit \(b) does not exist, so this rule can never fire")
                    problems = true
                }
                bit = Int(b)
            }
            let from = on["from"].map { match($0, field: field, bit: bit, log: log) } ?? .any
            let to = on["to"].map { match($0, field: field, bit: bit, log: log) } ?? .any
            if case let .values(a) = from, case let .values(b) = to, a.count == 1, a == b {
                log.report(at: on["to"]!, "from and to are both \(a[0]): a change never goes from a value to itself, so this rule can never fire")
                problems = true
            }
            if from == .values([]) || to == .values([]) { problems = true }
            trigger = .change(field: watched, bit: bit, from: from, to: to)
        case "counter":
            trigger = .counter(field: watched, maxStep: maxStep())
        default:
            let code = on["code"].flatMap { v -> Int? in
                guard let index = fieldIndex(v, map: map, log: log) else { return nil }
                if !map.fields[index].isInteger { log.report(at: v, "\(map.fields[index].name) is not a whole number: it cannot be a code") }
                return index
            }
            let time = on["time"].flatMap { v -> Int? in
                guard let index = fieldIndex(v, map: map, log: log) else { return nil }
                let f = map.fields[index]
                if f.type != .bcdTime, !{ if case .unixTime = f.presentation { true } else { false } }() {
                    log.report(at: v, "\(f.name) is not a time (bcd_time, or format unix_time)")
                }
                return index
            }
            if on["code"] != nil, code == nil { problems = true }
            trigger = .latest(counter: watched, code: code, time: time, maxStep: maxStep())
        }
        var guards: [(field: Int, match: ValueMatch)] = []
        for (name, condition) in spec["where"]?.mapping(log)?.entries ?? [] {
            guard let index = map.field(named: name) else {
                log.report(at: condition, "no field named '\(name)' (fields: \(map.fieldList))")
                problems = true
                continue
            }
            let m = match(condition, field: map.fields[index], bit: nil, log: log)
            if m == .values([]) { problems = true }
            guards.append((index, m))
        }
        let isChange = kind == "change", isCounter = kind != "change"
        let shared = parseOutcome(spec, map: map, requireType: spec["codes"] == nil, allowFrom: isChange, allowCount: isCounter, log: log)
        var codes: [Int64: MapOutcome] = [:]
        if let codesValue = spec["codes"] {
            if kind != "latest" || on["code"] == nil {
                log.report(at: codesValue, "codes need a latest rule with code: (the field that says which event it was)")
                problems = true
            }
            for (codeText, codeValue) in codesValue.mapping(log)?.entries ?? [] {
                guard let code = Int64(codeText) else {
                    log.report(at: codeValue, "codes are whole numbers, found '\(codeText)'")
                    continue
                }
                guard let codeSpec = codeValue.mapping(log, allowed: ["type", "alarm", "set", "fields"]),
                      var outcome = parseOutcome(codeSpec, map: map, requireType: true, allowFrom: false, allowCount: false, log: log)
                else { continue }
                outcome.constants += shared?.constants ?? []
                outcome.fields += shared?.fields ?? []
                codes[code] = outcome
            }
        } else if kind == "latest", on["code"] != nil {
            log.report(at: on["code"]!, "a latest rule with code: needs codes (code → event)")
            problems = true
        }
        guard !problems else { return nil }
        return MapRule(trigger: trigger, guards: guards, outcome: shared, codes: codes, line: value.line)
    }

    static func fieldIndex(_ value: YAMLValue, map: PolledMap, log: ProblemLog) -> Int? {
        guard let name = value.string(log) else { return nil }
        guard let index = map.field(named: name) else {
            log.report(at: value, "no field named '\(name)' (fields: \(map.fieldList))")
            return nil
        }
        return index
    }

    /// The outcome keys of a rule or of one of its codes.
    static func parseOutcome(_ spec: YAMLMapping, map: PolledMap, requireType: Bool, allowFrom: Bool, allowCount: Bool,
                             log: ProblemLog) -> MapOutcome? {
        var type = ""
        if let typeValue = requireType ? spec.required("type", log) : spec["type"], let text = typeValue.string(log) {
            let shape = text.split(separator: ".", omittingEmptySubsequences: false)
            if shape.count < 2 || shape.contains(where: { $0.isEmpty || !$0.allSatisfy { $0.isLowercase || $0 == "_" } }) {
                log.report(at: typeValue, "'\(text)' is not an event type like access.granted (lower case words joined by dots)")
            }
            type = text
        }
        var constants: [(String, JSONValue)] = []
        for (name, constant) in spec["set"]?.mapping(log)?.entries ?? [] {
            guard let text = constant.string(log) else { continue }
            constants.append((name, text == "true" ? .bool(true) : text == "false" ? .bool(false)
                                : Int64(text).map(JSONValue.int) ?? .string(text)))
        }
        var fields: [(String, MapSource)] = []
        for (name, sourceValue) in spec["fields"]?.mapping(log)?.entries ?? [] {
            guard let text = sourceValue.string(log) else { continue }
            switch text {
            case "from" where allowFrom: fields.append((name, .from))
            case "count" where allowCount: fields.append((name, .count))
            case "from", "count":
                log.report(at: sourceValue, text == "from" ? "from is the value before a change: only change rules have it"
                    : "count is a counter's growth: only counter and latest rules have it")
            default:
                if let index = map.field(named: text) { fields.append((name, .field(index))) } else {
                    log.report(at: sourceValue, "no field named '\(text)' (fields: \(map.fieldList))")
                }
            }
        }
        return MapOutcome(type: type, alarm: spec["alarm"]?.bool(log) ?? false, constants: constants, fields: fields)
    }

    /// The values a field (or one bit of it) can hold; nil for 64-bit fields, which can hold any.
    static func possibleValues(_ field: MapField, bit: Int?) -> ClosedRange<Int64>? {
        if bit != nil { return 0...1 }
        var range: ClosedRange<Int64>?
        switch field.type {
        case .bit: range = 0...1
        case .bits: range = field.bitCount >= 63 ? nil : 0...(Int64(1) << Int64(field.bitCount) - 1)
        case .u16, .bool: range = 0...65535
        case .i16: range = -32768...32767
        case .u32: range = 0...4_294_967_295
        case .i32: range = Int64(Int32.min)...Int64(Int32.max)
        case .bcd16: range = 0...9999
        case .bcd32: range = 0...99_999_999
        default: range = nil
        }
        if let r = range, field.shift > 0, r.lowerBound >= 0 { range = 0...(r.upperBound >> Int64(field.shift)) }
        if let mask = field.mask, mask <= UInt64(Int64.max) {
            range = 0...min(range?.upperBound ?? Int64.max, Int64(mask))
        }
        return range
    }

    /// A `from`, `to` or guard value: a number, an enum word of the field, true/false, nonzero, any, or a list.
    /// Values the field can never hold are reported; if none is left the match is `.values([])`.
    static func match(_ value: YAMLValue, field: MapField, bit: Int?, log: ProblemLog) -> ValueMatch {
        var texts: [(String, YAMLValue)] = []
        if case .sequence = value.node {
            for item in value.sequence(log) ?? [] { if let t = item.string(log) { texts.append((t, item)) } }
        } else if let t = value.string(log) {
            if t == "any" { return .any }
            if t == "nonzero" { return .nonzero }
            texts = [(t, value)]
        }
        let possible = possibleValues(field, bit: bit)
        var values: [Int64] = []
        for (text, at) in texts {
            var number: Int64?
            switch text {
            case "true": number = 1
            case "false": number = 0
            default:
                number = YAMLValue.wholeNumber(text)
                if number == nil, bit == nil, case let .words(table) = field.presentation {
                    number = table.first { $0.value == text }?.key
                }
            }
            guard let number else {
                log.report(at: at, "'\(text)' is not a value of \(field.name) (a number, true/false, nonzero, any\(wordsHint(field)))")
                continue
            }
            if let possible, !possible.contains(number) {
                log.report(at: at, "\(field.name)\(bit.map { " bit \($0)" } ?? "") holds \(possible.lowerBound)...\(possible.upperBound), never \(number), so this rule can never fire")
                continue
            }
            values.append(number)
        }
        return .values(values)
    }

    static func wordsHint(_ field: MapField) -> String {
        guard case let .words(table) = field.presentation else { return "" }
        return " or one of " + table.sorted { $0.key < $1.key }.map(\.value).joined(separator: ", ")
    }
}
