import AccessModel
import RequestAuthority
import Testing

@Suite("request authority: signature, allow rules, deadline")
struct RequestAuthorityTests {
    let pmKey: Ed25519PrivateKey
    let authority: RequestAuthority
    let topic = "accessgw/kunming-guandu/door-3e/command/open"
    let payload = Array(#"{"id":"pm-7f3a9c1e","issuer":"pm-kunming","time":"2026-11-30T08:00:00.000Z","ttl_ms":10000,"args":{"door":1}}"#.utf8)

    init() throws {
        pmKey = try Ed25519PrivateKey()
        authority = RequestAuthority(issuers: [
            Issuer(id: "pm-kunming", publicKey: pmKey.publicKey, allow: [
                AllowRule(devices: [NamePattern("door-*")!, NamePattern("gate-*")!], commands: ["open", "close"]),
                AllowRule(devices: [NamePattern("lift-*")!], commands: ["call"]),
            ]),
            Issuer(id: "archive", publicKey: try Ed25519PrivateKey().publicKey, allow: [
                AllowRule(devices: [NamePattern("*")!], commands: ["replay"]),
            ]),
        ])
    }

    @Test func aSignatureOfTopicNewlinePayloadByTheIssuerIsAccepted() throws {
        let signature = try RequestAuthority.signature(topic: topic, payload: payload, key: pmKey)
        #expect(authority.authenticate(issuer: "pm-kunming", topic: topic, payload: payload, signature: signature)
            == .accepted(issuer: "pm-kunming"))
    }

    @Test func forgedMovedOrMissingSignaturesAreUnauthenticated() throws {
        let signature = try RequestAuthority.signature(topic: topic, payload: payload, key: pmKey)
        let forged = try RequestAuthority.signature(topic: topic, payload: payload, key: Ed25519PrivateKey())
        // The same signed payload replayed to another device's topic.
        #expect(authority.authenticate(issuer: "pm-kunming", topic: "accessgw/kunming-guandu/door-9/command/open",
                                       payload: payload, signature: signature) == .rejected(.unauthenticated))
        #expect(authority.authenticate(issuer: "pm-kunming", topic: topic, payload: payload, signature: forged)
            == .rejected(.unauthenticated))
        #expect(authority.authenticate(issuer: "pm-kunming", topic: topic, payload: payload + [0x20], signature: signature)
            == .rejected(.unauthenticated))
        #expect(authority.authenticate(issuer: "stranger", topic: topic, payload: payload, signature: signature)
            == .rejected(.unauthenticated))
        #expect(authority.authenticate(issuer: "pm-kunming", topic: topic, payload: payload, signature: nil)
            == .rejected(.unauthenticated))
        #expect(authority.authenticate(issuer: "pm-kunming", topic: topic, payload: payload, signature: "%%%not base64")
            == .rejected(.unauthenticated))
        #expect(authority.authenticate(issuer: "pm-kunming", topic: topic, payload: payload,
                                       signature: String(repeating: "A", count: 100_000)) == .rejected(.unauthenticated))
    }

    @Test func unsignedRequestsCountAsIssuerUnsignedOnlyWhenSignaturesAreOff() throws {
        var lab = authority
        lab.requireSignature = false
        #expect(lab.authenticate(issuer: "anyone", topic: topic, payload: payload, signature: nil) == .accepted(issuer: "unsigned"))
        #expect(lab.authorise(issuer: "unsigned", device: "door-3e", action: "open") == .accepted(issuer: "unsigned"))
        // A signature that is present is still checked.
        let forged = try RequestAuthority.signature(topic: topic, payload: payload, key: Ed25519PrivateKey())
        #expect(lab.authenticate(issuer: "pm-kunming", topic: topic, payload: payload, signature: forged) == .rejected(.unauthenticated))
        #expect(authority.authorise(issuer: "unsigned", device: "door-3e", action: "open") == .rejected(.notPermitted))
    }

    @Test func allowRulesAreDeviceGlobsTimesCommandNames() {
        #expect(authority.authorise(issuer: "pm-kunming", device: "door-3e", action: "open") == .accepted(issuer: "pm-kunming"))
        #expect(authority.authorise(issuer: "pm-kunming", device: "gate-n", action: "close") == .accepted(issuer: "pm-kunming"))
        #expect(authority.authorise(issuer: "pm-kunming", device: "lift-a", action: "call") == .accepted(issuer: "pm-kunming"))
        #expect(authority.authorise(issuer: "pm-kunming", device: "lift-a", action: "open") == .rejected(.notPermitted))
        #expect(authority.authorise(issuer: "pm-kunming", device: "xdoor-3e", action: "open") == .rejected(.notPermitted))
        #expect(authority.authorise(issuer: "pm-kunming", device: "door-3e", action: "replay") == .rejected(.notPermitted))
        #expect(authority.authorise(issuer: "archive", device: "door-3e", action: "replay") == .accepted(issuer: "archive"))
        #expect(authority.authorise(issuer: "archive", device: "door-3e", action: "open") == .rejected(.notPermitted))
        #expect(authority.authorise(issuer: "nobody", device: "door-3e", action: "open") == .rejected(.notPermitted))
    }

    @Test func globsMatchStarAndQuestionMarkAndRefuseTopicCharacters() {
        #expect(NamePattern("door-*")!.matches("door-"))
        #expect(NamePattern("door-*")!.matches("door-3e"))
        #expect(!NamePattern("door-*")!.matches("door"))
        #expect(NamePattern("*-3?")!.matches("door-3e"))
        #expect(!NamePattern("*-3?")!.matches("door-3ee"))
        #expect(NamePattern("a*b*c")!.matches("aXbYbZc"))
        #expect(!NamePattern("a*b*c")!.matches("aXbYbZ"))
        #expect(NamePattern("*")!.matches("anything"))
        #expect(!NamePattern(String(repeating: "*a", count: 60))!.matches(String(repeating: "a", count: 59) + "b"))
        for bad in ["", "door/1", "door+", "#", "door 1"] { #expect(NamePattern(bad) == nil) }
    }

    @Test func theDeadlineIsTimePlusTheBoundedTTL() throws {
        let envelope = try RequestEnvelope.parse(payload).get()
        let sent = Timestamp(rfc3339: "2026-11-30T08:00:00.000Z")!
        #expect(envelope.deadline(defaultTTL: 5_000, maxTTL: 60_000) == Timestamp(millisecondsSinceEpoch: sent.millisecondsSinceEpoch + 10_000))
        #expect(envelope.deadline(defaultTTL: 5_000, maxTTL: 3_000) == Timestamp(millisecondsSinceEpoch: sent.millisecondsSinceEpoch + 3_000))
        var noTTL = envelope
        noTTL.ttlMilliseconds = nil
        #expect(noTTL.deadline(defaultTTL: 5_000, maxTTL: 60_000) == Timestamp(millisecondsSinceEpoch: sent.millisecondsSinceEpoch + 5_000))
        let deadline = envelope.deadline(defaultTTL: 5_000, maxTTL: 60_000)!
        func at(_ offset: Int64) -> Timestamp { Timestamp(millisecondsSinceEpoch: sent.millisecondsSinceEpoch + offset) }
        #expect(RequestAuthority.timing(sent: sent, deadline: deadline, now: at(9_999)) == nil)
        #expect(RequestAuthority.timing(sent: sent, deadline: deadline, now: at(10_000)) == .expired)
        #expect(RequestAuthority.timing(sent: sent, deadline: deadline, now: at(30_000)) == .expired)
        #expect(RequestAuthority.timing(sent: sent, deadline: deadline, now: at(-5_000)) == nil)
        #expect(RequestAuthority.timing(sent: sent, deadline: deadline, now: at(-5_001)) == .rejected(.clock))
    }
}

@Suite("request envelope parsing")
struct RequestEnvelopeTests {
    @Test func theSPECExampleParses() throws {
        let text = #"{"id":"pm-7f3a9c1e","issuer":"pm-kunming","time":"2026-11-30T08:00:00.000Z","ttl_ms":10000,"args":{"door":1},"reason":"visitor for 3-402"}"#
        let envelope = try RequestEnvelope.parse(Array(text.utf8)).get()
        #expect(envelope.id == "pm-7f3a9c1e")
        #expect(envelope.issuer == "pm-kunming")
        #expect(envelope.time == Timestamp(rfc3339: "2026-11-30T08:00:00.000Z"))
        #expect(envelope.ttlMilliseconds == 10_000)
        #expect(envelope.body["args"]?["door"] == .int(1))
    }

    @Test func everythingElseIsMalformed() {
        let cases = [
            "", "not json", "[]", "null", #""id""#, "{",
            #"{"issuer":"pm","time":"2026-11-30T08:00:00Z"}"#,
            #"{"id":"","issuer":"pm","time":"2026-11-30T08:00:00Z"}"#,
            #"{"id":"a/b","issuer":"pm","time":"2026-11-30T08:00:00Z"}"#,
            #"{"id":"\#(String(repeating: "x", count: 65))","issuer":"pm","time":"2026-11-30T08:00:00Z"}"#,
            #"{"id":"a","issuer":"p m","time":"2026-11-30T08:00:00Z"}"#,
            #"{"id":"a","issuer":"pm","time":"yesterday"}"#,
            #"{"id":"a","issuer":"pm","time":"2026-13-30T08:00:00Z"}"#,
            #"{"id":"a","issuer":"pm"}"#,
            #"{"id":"a","issuer":"pm","time":"2026-11-30T08:00:00Z","ttl_ms":-1}"#,
            #"{"id":"a","issuer":"pm","time":"2026-11-30T08:00:00Z","ttl_ms":"10"}"#,
            #"{"id":"a","id":"b","issuer":"pm","time":"2026-11-30T08:00:00Z"}"#,
            #"{"id":"a","issuer":"pm","time":"2026-11-30T08:00:00Z"} x"#,
            #"{"id":"a","issuer":"pm","time":"2026-11-30T08:00:00Z","x":\#(String(repeating: "[", count: 100))}"#,
        ]
        for text in cases {
            #expect(RequestEnvelope.parse(Array(text.utf8)) == .failure(.malformed), "\(text)")
        }
        let huge = Array(#"{"id":"a","issuer":"pm","time":"2026-11-30T08:00:00Z","reason":""#.utf8)
            + [UInt8](repeating: 0x41, count: 1 << 20) + Array(#""}"#.utf8)
        #expect(RequestEnvelope.parse(huge) == .failure(.malformed))
        #expect(RequestEnvelope.parse([0xFF, 0xFE, 0x00]) == .failure(.malformed))
    }

    @Test func jsonStringsAndNumbersDecodeExactly() throws {
        let value = try JSONValue(parsing: #" {"a":"\u00e9\ud83d\ude00\n","b":-12,"c":1.5e2,"d":[true,false,null]} "#)
        #expect(value["a"] == .string("é😀\n"))
        #expect(value["b"] == .int(-12))
        #expect(value["c"] == .double(150))
        #expect(value["d"] == .array([.bool(true), .bool(false), .null]))
        for bad in [#"{"a":01}"#, #"{"a":"\ud800"}"#, "[1,]", #"{"a" 1}"#, "\"\u{01}\"", "1e999", "-"] {
            #expect(throws: JSONValue.ParseError.self) { try JSONValue(parsing: bad) }
        }
    }
}
