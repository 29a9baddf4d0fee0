import Testing
@testable import RequestAuthority

@Suite("HMAC-SHA256")
struct HMACSHA256Tests {
    @Test func matchesRFC4231TestCase2() {
        let mac = HMACSHA256.hex(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(mac == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func differentIdentifiersGetDifferentPseudonyms() {
        let key = Array("site key".utf8)
        #expect(HMACSHA256.hex(key: key, message: Array("P-0012".utf8))
                != HMACSHA256.hex(key: key, message: Array("P-0013".utf8)))
    }
}
