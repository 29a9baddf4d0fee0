extension DeviceProfile {
    static let headerKeys = ["head_seq", "tail_seq", "boot_id", "window_count", "ack_seq", "unread", "log_flags"]

    static func parseEventLog(_ value: YAMLValue, enums: [String: [Int64: String]], log: ProblemLog) -> EventLogLayout? {
        guard let top = value.mapping(log, allowed: ["address", "header", "window", "record", "ack_with_read"]),
              let address = top.required("address", log)?.int(log, in: 0...65535),
              let header = top.required("header", log)?.mapping(log, allowed: headerKeys),
              let window = top.required("window", log)?.mapping(log, allowed: ["offset", "records", "record_size"]),
              let recordSpec = top.required("record", log)?.mapping(log, allowed: RecordRole.allCases.map(\.rawValue)) else {
            return nil
        }
        var offsets: [String: UInt16] = [:]
        for key in headerKeys {
            if let offset = header.required(key, log)?.int(log, in: 0...124) { offsets[key] = UInt16(offset) }
        }
        guard let windowOffset = window.required("offset", log)?.int(log, in: 1...124),
              let records = window.required("records", log)?.int(log, in: 1...8),
              let recordSize = window.required("record_size", log)?.int(log, in: 4...32) else { return nil }
        if address + windowOffset + records * recordSize > 65536 {
            log.report(at: top.owner, "the event log at \(address) with its window runs past the last Modbus address 65535")
            return nil
        }
        if windowOffset + records * recordSize > 125 {
            log.report(at: window.owner, "header and window span \(windowOffset + records * recordSize) registers; one read (function 03) holds at most 125")
        }
        for (key, offset) in offsets where offset + (["head_seq", "tail_seq", "ack_seq"].contains(key) ? 2 : 1) > windowOffset {
            log.report(at: header[key]!, "\(key) at offset \(offset) overlaps the record window at offset \(windowOffset)")
        }
        var fields: [RecordRole: FieldLayout] = [:]
        for (name, spec) in recordSpec.entries {
            guard let role = RecordRole(rawValue: name),
                  let field = FieldLayout.parse(name: name, spec, enums: enums, log: log) else { continue }
            if Int(field.offset) + field.registerCount > recordSize {
                log.report(at: spec, "offset \(field.offset) and \(field.registerCount) register(s) run past the \(recordSize)-register record")
                continue
            }
            if role == .subject, field.type != .string {
                log.report(at: spec, "the subject must have type string")
                continue
            }
            if role != .subject, field.type == .string {
                log.report(at: spec, "only the subject may be a string")
                continue
            }
            fields[role] = field
        }
        for role in [RecordRole.seq, .time, .code] where fields[role] == nil && recordSpec[role.rawValue] == nil {
            log.report(recordSpec.owner.file, recordSpec.owner.line, "\(recordSpec.owner.path).\(role.rawValue)", "missing required key")
        }
        // The device accepts function 23: ack_seq written and the log read in one transaction.
        let ackWithRead = top["ack_with_read"]?.bool(log) ?? false
        guard offsets.count == headerKeys.count, fields[.seq] != nil, fields[.time] != nil, fields[.code] != nil else { return nil }
        return EventLogLayout(
            address: UInt16(address), headSeq: offsets["head_seq"]!, tailSeq: offsets["tail_seq"]!,
            bootID: offsets["boot_id"]!, windowCount: offsets["window_count"]!, ackSeq: offsets["ack_seq"]!,
            unread: offsets["unread"]!, logFlags: offsets["log_flags"]!, headerCount: UInt16(windowOffset),
            windowOffset: UInt16(windowOffset), windowRecords: Int(records), recordSize: Int(recordSize),
            record: RecordLayout(fields: fields), ackWithRead: ackWithRead)
    }
}
