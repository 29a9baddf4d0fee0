import AccessModel

/// The fields every signed request carries (SPEC 4.1 and 4.2): who, which request, when and for how long.
public struct RequestEnvelope: Sendable, Equatable {
    /// Requests larger than this are `malformed` without being parsed (a command is a few hundred bytes).
    public static let maxPayloadBytes = 16 * 1024

    public var id: String
    public var issuer: String
    /// When the issuer made the request (the payload's `time`); nil for a request kind that has none.
    public var time: Timestamp?
    public var ttlMilliseconds: Int64?
    /// The whole payload object, for the fields of each request kind.
    public var body: JSONValue

    /// Parses and checks the envelope: `.malformed` for anything that is not a JSON object with a valid `id`
    /// and `issuer` (`[A-Za-z0-9._:-]{1,64}`), an RFC 3339 `time` when `requireTime`, and `ttl_ms` ≥ 0.
    public static func parse(_ payload: some Collection<UInt8>, requireTime: Bool = true) -> Result<RequestEnvelope, Rejection> {
        guard payload.count <= maxPayloadBytes, let body = try? JSONValue(parsing: payload, maxDepth: 8),
              case .object = body,
              case let .string(id)? = body["id"], isRequestID(id),
              case let .string(issuer)? = body["issuer"], isRequestID(issuer)
        else { return .failure(.malformed) }
        var time: Timestamp?
        switch body["time"] {
        case let .string(text)?:
            guard let parsed = Timestamp(strictRFC3339: text) else { return .failure(.malformed) }
            time = parsed
        case nil where !requireTime: break
        default: return .failure(.malformed)
        }
        var ttl: Int64?
        switch body["ttl_ms"] {
        case let .int(n)? where n >= 0: ttl = n
        case nil: break
        default: return .failure(.malformed)
        }
        return .success(RequestEnvelope(id: id, issuer: issuer, time: time, ttlMilliseconds: ttl, body: body))
    }

    /// `[A-Za-z0-9._:-]{1,64}`.
    public static func isRequestID(_ text: String) -> Bool {
        let utf8 = text.utf8
        guard (1...64).contains(utf8.count) else { return false }
        return utf8.allSatisfy { b in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(b) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || b == UInt8(ascii: ".") || b == UInt8(ascii: "_")
                || b == UInt8(ascii: ":") || b == UInt8(ascii: "-")
        }
    }

    /// The deadline of rule 6: `time` + min(`ttl_ms`, `maxTTL`), or `time` + `defaultTTL` without `ttl_ms`.
    public func deadline(defaultTTL: Int64, maxTTL: Int64) -> Timestamp? {
        guard let time else { return nil }
        let ttl = min(ttlMilliseconds ?? defaultTTL, maxTTL)
        return Timestamp(millisecondsSinceEpoch: time.millisecondsSinceEpoch &+ ttl)
    }
}

extension Timestamp {
    /// RFC 3339 in UTC as requests carry it (`2026-11-30T08:00:00.000Z`, milliseconds optional), checked
    /// character by character: the lenient `init(rfc3339:)` would read garbage as some time.
    public init?(strictRFC3339 text: String) {
        let b = Array(text.utf8)
        func digits(_ range: Range<Int>) -> Bool { range.allSatisfy { $0 < b.count && (48...57).contains(b[$0]) } }
        guard b.count == 20 || b.count == 24, digits(0..<4), b[4] == UInt8(ascii: "-"), digits(5..<7), b[7] == UInt8(ascii: "-"),
              digits(8..<10), b[10] == UInt8(ascii: "T"), digits(11..<13), b[13] == UInt8(ascii: ":"), digits(14..<16),
              b[16] == UInt8(ascii: ":"), digits(17..<19), b.last == UInt8(ascii: "Z")
        else { return nil }
        if b.count == 24 { guard b[19] == UInt8(ascii: "."), digits(20..<23) else { return nil } }
        func n(_ r: Range<Int>) -> Int { r.reduce(0) { $0 * 10 + Int(b[$1] - 48) } }
        let year = n(0..<4), month = n(5..<7)
        guard (1...12).contains(month), n(11..<13) < 24, n(14..<16) < 60, n(17..<19) < 61 else { return nil }
        // A day the month does not have (2026-02-30) is refused, not read as a day of the next month.
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...days).contains(n(8..<10)) else { return nil }
        self.init(rfc3339: text)
    }
}
