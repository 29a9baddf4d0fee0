import AccessModel
import RequestAuthority
import Testing

/// The envelope's edges (SPEC 4.1 rule 2): exactly what is still a request and what is already `malformed`.
@Suite("request envelope parsing: edge cases")
struct RequestEnvelopeEdgeTests {
    static func envelope(id: String = #""a""#, issuer: String = #""pm""#, time: String? = #""2026-11-30T08:00:00.000Z""#,
                         extra: String = "") -> [UInt8] {
        var fields = [#""id":\#(id)"#, #""issuer":\#(issuer)"#]
        if let time { fields.append(#""time":\#(time)"#) }
        if !extra.isEmpty { fields.append(extra) }
        return Array(("{" + fields.joined(separator: ",") + "}").utf8)
    }

    static func parses(_ payload: [UInt8], requireTime: Bool = true) -> RequestEnvelope? {
        try? RequestEnvelope.parse(payload, requireTime: requireTime).get()
    }

    @Test func idsAndIssuersAtTheirLimits() {
        let sixtyFour = String(repeating: "x", count: 64)
        #expect(Self.parses(Self.envelope(id: "\"\(sixtyFour)\""))?.id == sixtyFour)
        #expect(Self.parses(Self.envelope(issuer: "\"\(sixtyFour)\""))?.issuer == sixtyFour)
        #expect(Self.parses(Self.envelope(id: #""A.b_c:d-9""#))?.id == "A.b_c:d-9")
        // A JSON escape that decodes to an allowed character is that character; one that decodes to another is not.
        #expect(Self.parses(Self.envelope(id: #""\u0061b""#))?.id == "ab")
        for id in [#""a\u002Fb""#, #""a\u0000""#, #""é""#, #""a b""#, #""a\nb""#, "1", "null", #"["a"]"#, #""""#,
                   "\"\(String(repeating: "é", count: 32))\""] {
            #expect(Self.parses(Self.envelope(id: id)) == nil, "id \(id)")
            #expect(Self.parses(Self.envelope(issuer: id)) == nil, "issuer \(id)")
        }
    }

    @Test func timesAreStrictRFC3339InUTC() {
        #expect(Self.parses(Self.envelope(time: #""2026-11-30T08:00:00Z""#))?.time == Timestamp(rfc3339: "2026-11-30T08:00:00.000Z"))
        #expect(Self.parses(Self.envelope(time: #""2026-11-30T08:00:00.123Z""#))?.time?.millisecondsSinceEpoch
            == Timestamp(rfc3339: "2026-11-30T08:00:00.000Z")!.millisecondsSinceEpoch + 123)
        #expect(Self.parses(Self.envelope(time: #""2028-02-29T08:00:00Z""#)) != nil, "a leap day")
        for time in [#""2026-11-30T08:00:00+08:00""#, #""2026-11-30t08:00:00z""#, #""2026-11-30 08:00:00Z""#,
                     #""2026-11-30T08:00:00.12Z""#, #""2026-11-30T08:00:00.1234Z""#, #""2026-11-30T24:00:00Z""#,
                     #""2026-11-30T08:60:00Z""#, #""2026-02-30T08:00:00Z""#, #""2026-02-29T08:00:00Z""#, #""2026-04-31T08:00:00Z""#, #""2026-00-30T08:00:00Z""#, #""2026-11-32T08:00:00Z""#, #""2026-11-30""#,
                     #"" 2026-11-30T08:00:00Z""#, #""+2026-11-30T08:00:00Z""#, "1796025600000", "null", "true"] {
            #expect(Self.parses(Self.envelope(time: time)) == nil, "time \(time)")
        }
        // Without a time: refused where a time is required (commands), accepted where it is not (replay).
        #expect(Self.parses(Self.envelope(time: nil)) == nil)
        #expect(Self.parses(Self.envelope(time: nil), requireTime: false)?.time == nil)
        #expect(Self.parses(Self.envelope(time: #""yesterday""#), requireTime: false) == nil, "a bad time is never ignored")
    }

    @Test func ttlIsAWholeNonNegativeNumberAndTheDeadlineNeverWraps() throws {
        #expect(Self.parses(Self.envelope(extra: #""ttl_ms":0"#))?.ttlMilliseconds == 0)
        for ttl in ["1.5", "1e3", "-0.5", #""10""#, "null", "[]", "99999999999999999999"] {
            #expect(Self.parses(Self.envelope(extra: #""ttl_ms":\#(ttl)"#)) == nil, "ttl_ms \(ttl)")
        }
        let longest = try #require(Self.parses(Self.envelope(extra: #""ttl_ms":9223372036854775807"#)))
        let sent = try #require(longest.time)
        // max_ttl caps it before it is added, so the sum never overflows into the past.
        #expect(longest.deadline(defaultTTL: 10_000, maxTTL: 60_000)
            == Timestamp(millisecondsSinceEpoch: sent.millisecondsSinceEpoch + 60_000))
        // A zero TTL is a deadline equal to `time`: expired on arrival, never executed.
        let zero = try #require(Self.parses(Self.envelope(extra: #""ttl_ms":0"#)))
        let deadline = try #require(zero.deadline(defaultTTL: 10_000, maxTTL: 60_000))
        #expect(RequestAuthority.timing(sent: sent, deadline: deadline, now: sent) == .expired)
    }

    @Test func sizeAndShapeLimits() {
        // Exactly the limit is parsed; one byte more is refused unread.
        var exact = Array(#"{"id":"a","issuer":"pm","time":"2026-11-30T08:00:00Z","reason":""#.utf8)
        exact += [UInt8](repeating: 0x61, count: RequestEnvelope.maxPayloadBytes - exact.count - 2) + Array(#""}"#.utf8)
        #expect(exact.count == RequestEnvelope.maxPayloadBytes)
        #expect(Self.parses(exact) != nil)
        var over = Array(#"{"id":"a","issuer":"pm","time":"2026-11-30T08:00:00Z","reason":""#.utf8)
        over += [UInt8](repeating: 0x61, count: RequestEnvelope.maxPayloadBytes - over.count - 1) + Array(#""}"#.utf8)
        #expect(Self.parses(over) == nil)
        // Whitespace around the object is JSON; a byte-order mark, a second value or trailing garbage is not.
        #expect(Self.parses(Array(" \n\t".utf8) + Self.envelope() + Array(" \r\n".utf8)) != nil)
        #expect(Self.parses([0xEF, 0xBB, 0xBF] + Self.envelope()) == nil)
        #expect(Self.parses(Self.envelope() + Self.envelope()) == nil)
        #expect(Self.parses(Self.envelope() + [0]) == nil)
        #expect(Self.parses(Array("{}".utf8)) == nil)
        // Depth: args nested within the limit parse, past it the whole request is refused.
        #expect(Self.parses(Self.envelope(extra: #""args":{"a":{"b":{"c":[1]}}}"#))?.body["args"]?["a"]?["b"]?["c"] == .array([.int(1)]))
        #expect(Self.parses(Self.envelope(extra: #""args":\#(String(repeating: "[", count: 9))\#(String(repeating: "]", count: 9))"#)) == nil)
        // Unknown fields are carried, not refused (args and reason are the request kind's business).
        #expect(Self.parses(Self.envelope(extra: #""future_field":{"x":1}"#))?.body["future_field"]?["x"] == .int(1))
    }
}
