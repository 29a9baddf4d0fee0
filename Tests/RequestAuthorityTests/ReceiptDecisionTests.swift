import AccessModel
import Foundation
import RequestAuthority
import Testing

@Suite("Receipts: parsing and decision (SPEC 4.3)")
struct ReceiptDecisionTests {
    static let topic = "accessgw/kunming-guandu/gateway/gw-01/receipt"
    static let epoch = "9f3a1c0d00000000"
    let central = try! Ed25519PrivateKey()
    let operatorKey = try! Ed25519PrivateKey()

    var authority: RequestAuthority {
        RequestAuthority(issuers: [
            Issuer(id: "pm-central", publicKey: central.publicKey,
                   allow: [AllowRule(devices: [NamePattern("*")!], commands: [RequestAuthority.receiptPermission])]),
            Issuer(id: "pm-ops", publicKey: operatorKey.publicKey,
                   allow: [AllowRule(devices: [NamePattern("*")!], commands: ["open", "replay"])]),
        ])
    }

    func payload(_ text: String) -> [UInt8] { Array(text.utf8) }

    func decide(_ text: String, key: Ed25519PrivateKey?, applied: Int64? = nil) -> Result<Receipt, ReceiptIgnored> {
        let bytes = payload(text)
        let signature = key.map { try! RequestAuthority.signature(topic: Self.topic, payload: bytes, key: $0) }
        return authority.decideReceipt(topic: Self.topic, payload: bytes, signature: signature, gateway: "gw-01",
                                       epoch: Self.epoch, appliedThrough: applied)
    }

    func receipt(issuer: String = "pm-central", epoch: String = epoch, through: Int64, ranges: String = "") -> String {
        #"{"issuer":"\#(issuer)","time":"2026-12-07T08:00:00.000Z","epoch":"\#(epoch)","through":\#(through)"#
            + (ranges.isEmpty ? "}" : #","ranges":\#(ranges)}"#)
    }

    @Test func theSpecExampleParses() {
        let parsed = Receipt.parse(payload("""
            {"issuer":"pm-central","time":"2026-12-07T08:00:00.000Z","epoch":"9f3a1c0d",
             "through":18342,"ranges":[[18350,18360],[18371,18371]]}
            """))
        #expect(parsed?.through == 18342)
        #expect(parsed?.ranges == [18350...18360, 18371...18371])
        #expect(parsed?.epoch == "9f3a1c0d")
    }

    @Test(arguments: [
        "not json", "[]", "{}",
        #"{"issuer":"pm-central","time":"2026-12-07T08:00:00.000Z","epoch":"9f3a","through":-1}"#,
        #"{"issuer":"pm-central","time":"2026-12-07T08:00:00.000Z","epoch":"9f3a","through":9007199254740992}"#,
        #"{"issuer":"pm-central","time":"2026-12-07T08:00:00.000Z","epoch":"9f3a","through":1.5}"#,
        #"{"issuer":"pm-central","time":"2026-12-07T08:00:00.000Z","epoch":"9F3A","through":1}"#,
        #"{"issuer":"pm-central","time":"yesterday","epoch":"9f3a","through":1}"#,
        #"{"issuer":"pm central","time":"2026-12-07T08:00:00.000Z","epoch":"9f3a","through":1}"#,
        #"{"issuer":"pm-central","time":"2026-12-07T08:00:00.000Z","epoch":"9f3a","through":1,"ranges":[[5,3]]}"#,
        #"{"issuer":"pm-central","time":"2026-12-07T08:00:00.000Z","epoch":"9f3a","through":1,"ranges":[[5,9],[9,12]]}"#,
        #"{"issuer":"pm-central","time":"2026-12-07T08:00:00.000Z","epoch":"9f3a","through":1,"ranges":[[10,12],[5,6]]}"#,
        #"{"issuer":"pm-central","time":"2026-12-07T08:00:00.000Z","epoch":"9f3a","through":1,"ranges":[[0,2]]}"#,
        #"{"issuer":"pm-central","time":"2026-12-07T08:00:00.000Z","epoch":"9f3a","through":1,"ranges":[[5]]}"#,
        #"{"issuer":"pm-central","time":"2026-12-07T08:00:00.000Z","epoch":"9f3a","through":1,"ranges":{"a":1}}"#,
    ])
    func malformedReceiptsAreRefused(_ text: String) {
        #expect(Receipt.parse(Array(text.utf8)) == nil)
    }

    @Test func moreThan64RangesAreMalformedAnd64AreNot() {
        let ranges = (0..<65).map { "[\(10 + $0 * 3),\(11 + $0 * 3)]" }
        #expect(Receipt.parse(payload(receipt(through: 1, ranges: "[" + ranges.prefix(64).joined(separator: ",") + "]"))) != nil)
        #expect(Receipt.parse(payload(receipt(through: 1, ranges: "[" + ranges.joined(separator: ",") + "]"))) == nil)
    }

    @Test func aReceiptSignedByAnIssuerGrantedReceiptIsApplied() throws {
        let decided = try decide(receipt(through: 40, ranges: "[[45,50]]"), key: central).get()
        #expect(decided.through == 40 && decided.ranges == [45...50] && decided.issuer == "pm-central")
    }

    @Test func forgedUnsignedUnpermittedOtherEpochAndStaleReceiptsAreIgnoredByReason() {
        #expect(decide(receipt(through: 40), key: nil) == .failure(.unsigned))
        #expect(decide(receipt(through: 40), key: operatorKey) == .failure(.badSignature), "signed by another key than pm-central's")
        #expect(decide(receipt(issuer: "pm-ops", through: 40), key: operatorKey) == .failure(.notPermitted))
        #expect(decide(receipt(issuer: "nobody", through: 40), key: central) == .failure(.badSignature))
        #expect(decide(receipt(epoch: "abcdef", through: 40), key: central) == .failure(.otherEpoch))
        #expect(decide(receipt(through: 39), key: central, applied: 40) == .failure(.stale))
        #expect((try? decide(receipt(through: 40), key: central, applied: 40).get()) != nil, "the retained receipt again")
        #expect(decide("{", key: central) == .failure(.malformed))
    }

    @Test func aSignatureOverAnotherTopicDoesNotCount() {
        let bytes = payload(receipt(through: 40))
        let signature = try! RequestAuthority.signature(topic: "accessgw/kunming-guandu/gateway/gw-02/receipt", payload: bytes, key: central)
        #expect(authority.decideReceipt(topic: Self.topic, payload: bytes, signature: signature, gateway: "gw-01",
                                        epoch: Self.epoch, appliedThrough: nil) == .failure(.badSignature))
    }

    @Test func unsignedReceiptsAreIgnoredEvenWithSignaturesOff() {
        var lax = authority
        lax.requireSignature = false
        #expect(lax.decideReceipt(topic: Self.topic, payload: payload(receipt(through: 4)), signature: nil, gateway: "gw-01",
                                  epoch: Self.epoch, appliedThrough: nil) == .failure(.unsigned))
    }

    @Test func thePayloadAReceiptWritesParsesBackTheSame() {
        let receipt = Receipt(issuer: "pm-central", time: Timestamp(millisecondsSinceEpoch: 1_796_000_000_000), epoch: "00ff",
                              through: 7, ranges: [9...9, 12...20])
        #expect(Receipt.parse(receipt.payload) == receipt)
    }
}
