import AccessModel

extension FieldLayout {
    static let keys = ["offset", "type", "length", "encoding", "mask", "shift", "scale", "enum", "bits", "format"]

    /// Parses `{ offset: 2, type: string, length: 16, encoding: ascii }` and its kin.
    static func parse(name: String, _ value: YAMLValue, enums: [String: [Int64: String]], log: ProblemLog) -> FieldLayout? {
        guard let spec = value.mapping(log, allowed: keys),
              let offset = spec.required("offset", log)?.int(log, in: 0...124),
              let type: ValueType = spec.required("type", log)?.choice(log) else { return nil }
        var field = FieldLayout(name: name, offset: UInt16(offset), type: type, length: 0, encoding: .ascii,
                                mask: nil, shift: 0, presentation: .number)
        if type == .string {
            field.length = Int(spec.required("length", log)?.int(log, in: 1...240) ?? 2)
            field.encoding = spec["encoding"]?.choice(log) ?? .ascii
        } else {
            for key in ["length", "encoding"] where spec[key] != nil {
                log.report(at: spec[key]!, "only string fields take \(key)")
            }
        }
        field.mask = spec["mask"]?.int(log, in: 1...0xFFFF_FFFF).map { UInt32($0) }
        field.shift = Int(spec["shift"]?.int(log, in: 0...31) ?? 0)
        let presentations = ["scale", "enum", "bits", "format"].filter { spec[$0] != nil }
        if presentations.count > 1 {
            log.report(at: value, "choose one of scale, enum, bits and format, not \(presentations.joined(separator: " and "))")
        }
        if let scale = spec["scale"]?.double(log) { field.presentation = .scaled(scale) }
        if let enumValue = spec["enum"], let enumName = enumValue.string(log) {
            if let table = enums[enumName] { field.presentation = .words(table) } else {
                log.report(at: enumValue, "unknown enum '\(enumName)' (defined: \(enums.keys.sorted().joined(separator: ", ")))")
            }
        }
        if let bitsValue = spec["bits"] {
            field.presentation = .flags(DeviceProfile.parseBitNames(bitsValue, bits: 32, log: log))
        }
        if let formatValue = spec["format"], let format = formatValue.string(log) {
            switch format {
            case "version": field.presentation = .version
            case "unix_time": field.presentation = .unixTime
            default: log.report(at: formatValue, "'\(format)' is not one of version, unix_time")
            }
        }
        return field
    }
}
