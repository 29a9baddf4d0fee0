import AccessModel

/// Where an event field's value comes from in the record: `value / 1000`, `extra.low as plate_colour`,
/// `extra.bits`, `extra.bit0`, `subject`.
public struct FieldSource: Sendable {
    public enum Part: Sendable, Equatable {
        case whole
        /// The low or high 16 bits of a 32-bit field.
        case low16, high16
        /// One bit as true or false.
        case bit(Int)
        /// The set bits as a list of numbers: floors from a floor mask. Bit 0 is floor `lowest` (1 unless the profile
        /// says `.bits from -2`), counting upwards and skipping floor 0 when counting up from a basement
        /// (B2 = -2, B1 = -1, then 1).
        case bitNumbers(lowest: Int64)
    }

    public var role: RecordRole
    public var part: Part
    public var divisor: Double?
    public var words: [Int64: String]?

    /// Parses the source grammar `<field>[.low|.high|.bitN|.bits] [/ <number>] [as <enum>]`; nil with a reason.
    public static func parse(_ text: String, enums: [String: [Int64: String]]) -> Result<FieldSource, SourceError> {
        var tokens = text.split(separator: " ").map(String.init)
        var words: [Int64: String]?
        if tokens.count >= 2, tokens[tokens.count - 2] == "as" {
            let name = tokens.removeLast()
            tokens.removeLast()
            guard let table = enums[name] else {
                return .failure(SourceError("unknown enum '\(name)' (defined: \(enums.keys.sorted().joined(separator: ", ")))"))
            }
            words = table
        }
        var lowest: Int64?
        if tokens.count == 3, tokens[1] == "from" {
            guard tokens[0].hasSuffix(".bits"), let from = Int64(tokens[2]), (-100...100).contains(from) else {
                return .failure(SourceError("'from N' follows a '.bits' field and names bit 0's floor (-100...100), found '\(text)'"))
            }
            lowest = from
            tokens.removeLast(2)
        }
        var divisor: Double?
        if tokens.count == 3, tokens[1] == "/" {
            guard let d = Double(tokens[2]), d != 0 else { return .failure(SourceError("'\(tokens[2])' is not a divisor")) }
            divisor = d
            tokens.removeLast(2)
        }
        guard tokens.count == 1 else {
            return .failure(SourceError("expected '<field>[.low|.high|.bitN|.bits [from N]] [/ N] [as ENUM]', found '\(text)'"))
        }
        let pieces = tokens[0].split(separator: ".", maxSplits: 1).map(String.init)
        guard let role = RecordRole(rawValue: pieces[0]) else {
            return .failure(SourceError("unknown record field '\(pieces[0])' (fields: \(RecordRole.allCases.map(\.rawValue).joined(separator: ", ")))"))
        }
        var part = Part.whole
        if pieces.count == 2 {
            switch pieces[1] {
            case "low": part = .low16
            case "high": part = .high16
            case "bits": part = .bitNumbers(lowest: lowest ?? 1)
            case let p where p.hasPrefix("bit"):
                guard let n = Int(p.dropFirst(3)), (0..<32).contains(n) else { return .failure(SourceError("'\(p)' is not bit0...bit31")) }
                part = .bit(n)
            default: return .failure(SourceError("unknown part '.\(pieces[1])' (use .low, .high, .bitN or .bits)"))
            }
        }
        if role == .subject, part != .whole || divisor != nil || words != nil {
            return .failure(SourceError("the subject is text: it takes no part, divisor or enum"))
        }
        return .success(FieldSource(role: role, part: part, divisor: divisor, words: words))
    }

    public struct SourceError: Error, Sendable {
        public var message: String
        init(_ message: String) { self.message = message }
    }

    /// The field's JSON value for a decoded record; nil means the field is left out (an empty subject,
    /// a code outside its enum such as direction 0 "not applicable").
    func value(in record: DecodedRecord) -> JSONValue? {
        if role == .subject {
            guard let subject = record.subject, !subject.isEmpty else { return nil }
            return .string(subject)
        }
        let raw = record[role]
        let number: Int64
        switch part {
        case .whole: number = raw
        case .low16: number = raw & 0xFFFF
        case .high16: number = (raw >> 16) & 0xFFFF
        case let .bit(n): return .bool(raw & (1 << Int64(n)) != 0)
        case let .bitNumbers(lowest):
            return .array((0..<32).filter { raw & (1 << Int64($0)) != 0 }.map { bit in
                let floor = lowest + Int64(bit)
                return .int(lowest < 0 && floor >= 0 ? floor + 1 : floor)
            })
        }
        if let words { return words[number].map(JSONValue.string) }
        if let divisor { return .double(Double(number) / divisor) }
        return .int(number)
    }
}

/// The roles of record fields that event rules can refer to.
public enum RecordRole: String, Sendable, CaseIterable {
    case seq, time, millis, code, point, direction, flags, value, extra, subject

    /// The role's place in `allCases`, without searching it (a decoded record's numbers are kept in this order).
    var ordinal: Int {
        switch self {
        case .seq: 0
        case .time: 1
        case .millis: 2
        case .code: 3
        case .point: 4
        case .direction: 5
        case .flags: 6
        case .value: 7
        case .extra: 8
        case .subject: 9
        }
    }
}
