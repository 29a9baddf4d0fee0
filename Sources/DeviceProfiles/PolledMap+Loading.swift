import AccessModel

extension PolledMap {
    static let topKeys = ["utc_offset", "reads", "blocks", "rules"]
    static let fieldKeys = ["offset", "type", "count", "length", "encoding", "byte_order", "word_order", "shift", "mask",
                            "scale", "add", "enum", "bits", "format", "pattern"]
    static let reservedNames: Set<String> = ["from", "count"]

    /// Parses the map-2 keys of a profile (`blocks`, `state` as a list, `rules`, `reads`, `utc_offset`); nil when
    /// the profile has no `blocks`.
    static func parse(_ top: YAMLMapping, enums: [String: [Int64: String]], layout: WordLayout, log: ProblemLog) -> PolledMap? {
        guard let blocksValue = top["blocks"] else {
            for key in ["rules", "reads", "utc_offset"] where top[key] != nil {
                log.report(at: top[key]!, "\(key) needs blocks to read (map version 2)")
            }
            if let state = top["state"], case .sequence = state.node {
                log.report(at: state, "a list of state fields needs blocks to read them from (map version 2)")
            }
            return nil
        }
        var map = PolledMap(blocks: [], fields: [], state: [], rules: [], reads: [], imageWords: 0,
                            utcOffsetSeconds: top["utc_offset"].flatMap { parseUTCOffset($0, log: log) } ?? 0)
        for (name, blockValue) in blocksValue.mapping(log)?.entries ?? [] {
            parseBlock(name: name, blockValue, into: &map, enums: enums, layout: layout, log: log)
        }
        if let state = top["state"], case .sequence = state.node {
            for entry in state.sequence(log) ?? [] {
                guard let name = entry.string(log) else { continue }
                if let index = map.field(named: name) { map.state.append(index) } else {
                    log.report(at: entry, "no field named '\(name)' (fields: \(map.fieldList))")
                }
            }
        }
        map.reads = planReads(map.blocks, top["reads"], log: log)
        if let commands = top["commands"] { map.commands = parseCommands(commands, blocks: map.blocks, log: log) }
        for ruleValue in top["rules"]?.sequence(log) ?? [] {
            if let rule = parseRule(ruleValue, map: map, log: log) { map.rules.append(rule) }
        }
        if !map.rules.isEmpty, map.imageWords > 32, let rules = top["rules"] {
            log.report(at: rules, "the blocks take \(map.imageWords) words (bits packed 16 to a word); event rules need them in at most 32")
        }
        return map
    }

    var fieldList: String { fields.map(\.name).joined(separator: ", ") }

    static func parseUTCOffset(_ value: YAMLValue, log: ProblemLog) -> Int? {
        guard let text = value.string(log) else { return nil }
        if text == "UTC" || text == "Z" { return 0 }
        let sign = text.first == "-" ? -1 : 1
        let parts = text.dropFirst(text.first == "+" || text.first == "-" ? 1 : 0).split(separator: ":")
        guard text.first == "+" || text.first == "-", (1...2).contains(parts.count),
              let hours = Int(parts[0]), (0...14).contains(hours),
              let minutes = parts.count == 2 ? Int(parts[1]) : 0, (0...59).contains(minutes) else {
            log.report(at: value, "'\(text)' is not a UTC offset like +08:00, -05:30 or UTC")
            return nil
        }
        return sign * (hours * 3600 + minutes * 60)
    }

    static func parseBlock(name: String, _ value: YAMLValue, into map: inout PolledMap, enums: [String: [Int64: String]],
                           layout: WordLayout, log: ProblemLog) {
        guard let spec = value.mapping(log, allowed: ["table", "address", "count", "fields"]),
              let address = spec.required("address", log)?.int(log, in: 0...65535) else { return }
        let table: ModbusTable = spec["table"].flatMap { $0.choice(log) } ?? .holding
        guard let count = spec.required("count", log)?.int(log, in: 1...Int64(table.maximumRead)) else { return }
        if address + count > 65536 {
            log.report(at: value, "addresses \(address)...\(address + count - 1) run past 65535")
            return
        }
        let block = MapBlock(name: name, table: table, address: UInt16(address), count: Int(count), imageOffset: map.imageWords,
                             line: value.line)
        map.blocks.append(block)
        map.imageWords += block.imageWords
        for (fieldName, fieldValue) in spec.required("fields", log)?.mapping(log)?.entries ?? [] {
            if reservedNames.contains(fieldName) {
                log.report(at: fieldValue, "'\(fieldName)' is reserved for rules (the value before a change, a counter's growth)")
                continue
            }
            if map.field(named: fieldName) != nil {
                log.report(at: fieldValue, "a field named '\(fieldName)' is already defined in another block")
                continue
            }
            guard var field = parseField(name: fieldName, fieldValue, block: map.blocks.count - 1, table: table,
                                         enums: enums, layout: layout, log: log) else { continue }
            if field.offset + field.span > block.count {
                let unit = table.holdsBits ? "bit(s)" : "register(s)"
                log.report(at: fieldValue, "offset \(field.offset) and \(field.span) \(unit) run past the block's \(block.count)")
                continue
            }
            field.line = fieldValue.line
            map.fields.append(field)
        }
    }

    static func parseField(name: String, _ value: YAMLValue, block: Int, table: ModbusTable, enums: [String: [Int64: String]],
                           layout: WordLayout, log: ProblemLog) -> MapField? {
        guard let spec = value.mapping(log, allowed: fieldKeys),
              let offset = spec.required("offset", log)?.int(log, in: 0...1999),
              let type: MapField.ValueType = spec.required("type", log)?.choice(log) else { return nil }
        var field = MapField(name: name, block: block, offset: Int(offset), type: type, bitCount: 1,
                             byteOrder: layout.byteOrder, wordOrder: layout.wordOrder, length: 0, encoding: .ascii,
                             shift: 0, mask: nil, scale: nil, add: nil, presentation: .number, timePattern: [], line: value.line)
        let bitType = type == .bit || type == .bits
        if bitType != table.holdsBits {
            log.report(at: spec["type"]!, table.holdsBits
                ? "\(table.rawValue) hold bits: use type bit or bits"
                : "\(type.rawValue) reads coils or discrete inputs; in \(table.rawValue) registers use a number type with shift and mask")
            return nil
        }
        func only(_ key: String, _ allowed: Bool, _ what: String) -> YAMLValue? {
            guard let v = spec[key] else { return nil }
            if !allowed { log.report(at: v, "only \(what) take \(key)") }
            return allowed ? v : nil
        }
        if let count = only("count", type == .bits, "bits fields") { field.bitCount = Int(count.int(log, in: 1...64) ?? 1) }
        if type == .bits, spec["count"] == nil { log.report(at: value, "bits fields need count (1...64)") }
        if type == .string {
            field.length = Int(spec.required("length", log)?.int(log, in: 1...240) ?? 2)
            field.encoding = spec["encoding"]?.choice(log) ?? .ascii
        } else {
            _ = only("length", false, "string fields")
            _ = only("encoding", false, "string fields")
        }
        if type == .bcdTime {
            let pattern = spec.required("pattern", log)?.string(log) ?? "YYMMDDhhmmss"
            if pattern.isEmpty || pattern.count > 16 || !pattern.allSatisfy({ "YMDhms_".contains($0) }) {
                log.report(at: spec["pattern"] ?? value, "'\(pattern)' is not a BCD time pattern of Y M D h m s _ digits (e.g. YYMMDDhhmmss)")
            } else {
                field.timePattern = Array(pattern)
            }
            if field.timePattern.isEmpty { field.timePattern = Array("YYMMDDhhmmss") }
            // Vendor manuals list BCD date-times in reading order: the registers follow the pattern whatever the
            // profile's word_order (which reverses 32- and 64-bit numbers); the field's own word_order overrides.
            field.wordOrder = .highFirst
        } else {
            _ = only("pattern", false, "bcd_time fields")
        }
        if let order = only("byte_order", !table.holdsBits, "register fields") { field.byteOrder = order.choice(log) ?? field.byteOrder }
        if let order = only("word_order", !table.holdsBits, "register fields") { field.wordOrder = order.choice(log) ?? field.wordOrder }
        let numeric = field.isInteger
        if let shift = only("shift", numeric, "whole-number fields") { field.shift = Int(shift.int(log, in: 0...63) ?? 0) }
        if let mask = only("mask", numeric, "whole-number fields") { field.mask = mask.int(log, in: 1...Int64.max).map { UInt64($0) } }
        let presentations = ["scale", "add", "enum", "bits", "format"].filter { spec[$0] != nil }
        if presentations.contains(where: { $0 != "scale" && $0 != "add" }), presentations.count > 1 {
            log.report(at: value, "choose one of scale/add, enum, bits and format, not \(presentations.joined(separator: " and "))")
        }
        let scalable = numeric || type == .float32
        if let scale = only("scale", scalable, "number fields") { field.scale = scale.double(log) }
        if let add = only("add", scalable, "number fields") { field.add = add.double(log) }
        if let enumValue = only("enum", numeric, "whole-number fields"), let enumName = enumValue.string(log) {
            if let table = enums[enumName] { field.presentation = .words(table) } else {
                log.report(at: enumValue, "unknown enum '\(enumName)' (defined: \(enums.keys.sorted().joined(separator: ", ")))")
            }
        }
        if let bitsValue = only("bits", numeric, "whole-number fields") {
            field.presentation = .flags(DeviceProfile.parseBitNames(bitsValue, bits: 64, log: log))
        }
        if let formatValue = only("format", numeric, "whole-number fields"), let format = formatValue.string(log) {
            switch format {
            case "decimal": field.presentation = .decimal
            case "unix_time": field.presentation = .unixTime
            default: log.report(at: formatValue, "'\(format)' is not one of decimal, unix_time")
            }
        }
        return field
    }

    /// The fewest requests covering every block: blocks of one table merge when they touch or overlap, or when
    /// the gap between them is at most `max_register_gap` / `max_bit_gap` and holds no address marked illegal,
    /// as long as the request stays within 125 registers or 2000 bits.
    static func planReads(_ blocks: [MapBlock], _ value: YAMLValue?, log: ProblemLog) -> [MapRead] {
        var registerGap = 0, bitGap = 0
        var illegal: [ModbusTable: [ClosedRange<Int>]] = [:]
        if let value, let reads = value.mapping(log, allowed: ["max_register_gap", "max_bit_gap", "illegal"]) {
            registerGap = Int(reads["max_register_gap"]?.int(log, in: 0...124) ?? 0)
            bitGap = Int(reads["max_bit_gap"]?.int(log, in: 0...1999) ?? 0)
            for (tableName, list) in reads["illegal"]?.mapping(log)?.entries ?? [] {
                guard let table = ModbusTable(rawValue: tableName) else {
                    log.report(at: list, "'\(tableName)' is not one of \(ModbusTable.allCases.map(\.rawValue).joined(separator: ", "))")
                    continue
                }
                for entry in list.sequence(log) ?? [] {
                    guard let text = entry.string(log) else { continue }
                    let ends = text.split(separator: "-").map { Int(String($0.filter { $0 != " " })) }
                    guard (1...2).contains(ends.count), let low = ends[0], let high = ends.last!, low <= high, high <= 65535 else {
                        log.report(at: entry, "'\(text)' is not an address or a range like 5-9")
                        continue
                    }
                    illegal[table, default: []].append(low...high)
                }
            }
        }
        for block in blocks {
            let range = Int(block.address)...(Int(block.address) + block.count - 1)
            if let bad = illegal[block.table]?.first(where: { $0.overlaps(range) }), let value {
                log.report(value.file, block.line, "blocks.\(block.name)",
                           "covers \(block.table.rawValue) \(bad.lowerBound)...\(bad.upperBound), marked illegal in reads")
            }
        }
        var reads: [MapRead] = []
        for table in ModbusTable.allCases {
            let sorted = blocks.indices.filter { blocks[$0].table == table }.sorted { blocks[$0].address < blocks[$1].address }
            let gap = table.holdsBits ? bitGap : registerGap
            for index in sorted {
                let block = blocks[index]
                let start = Int(block.address), end = start + block.count
                if var last = reads.last, last.table == table {
                    let lastEnd = Int(last.address) + last.count
                    let hole = start > lastEnd ? lastEnd...(start - 1) : nil
                    let holeIsLegal = hole.map { h in !(illegal[table] ?? []).contains { $0.overlaps(h) } } ?? true
                    if start - lastEnd <= gap, holeIsLegal, max(end, lastEnd) - Int(last.address) <= table.maximumRead {
                        last.count = max(end, lastEnd) - Int(last.address)
                        last.parts.append(.init(block: index, start: start - Int(last.address)))
                        reads[reads.count - 1] = last
                        continue
                    }
                }
                reads.append(MapRead(table: table, address: block.address, count: block.count, parts: [.init(block: index, start: 0)]))
            }
        }
        return reads
    }
}
