import AccessModel
@testable import Gateway
import RequestAuthority
import Testing

@Suite("privacy")
struct PrivacyFilterTests {
    @Test func hmacMatchesTheKnownVector() {
        #expect(HMACSHA256.hex(key: Array("key".utf8), message: Array("The quick brown fox jumps over the lazy dog".utf8))
            == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
    }

    @Test func platesAreMaskedKeepingProvinceAndLastTwo() {
        #expect(PrivacyFilter.mask(plate: "云A12345") == "云A***45")
        #expect(PrivacyFilter.mask(plate: "粤BD12345") == "粤B***45")
    }

    @Test func personIdsArePseudonymisedStablyAndPlatesMasked() {
        var settings = GatewayConfiguration.Privacy()
        settings.personIDs = .pseudonymise
        settings.plates = .mask
        settings.key = Array("site-secret".utf8)
        let filter = PrivacyFilter(settings)
        let out = filter.apply(to: [("person", .string("P-0012")), ("plate", .string("云A12345")), ("score", .double(0.9))])
        guard case let .string(pseudonym) = out[0].1 else { Issue.record("person is not a string"); return }
        #expect(pseudonym.hasPrefix("k1:") && pseudonym.count == 19 && pseudonym.dropFirst(3).allSatisfy(\.isHexDigit))
        #expect(pseudonym != "P-0012")
        #expect(filter.apply(to: [("person", .string("P-0012"))])[0].1 == .string(pseudonym))
        #expect(out[1].1 == .string("云A***45"))
        #expect(out[2].1 == .double(0.9))
    }

    @Test func unclassifiedSubjectsAndUndecodableBytesNeverLeaveInTheClear() {
        var settings = GatewayConfiguration.Privacy()
        settings.plates = .mask
        let withoutKey = PrivacyFilter(settings).apply(to: [("subject", .string("云A12345")), ("subject_hex", .string("d4c6413132ff34"))])
        #expect(withoutKey.map(\.0) == ["subject"])
        #expect(withoutKey.first?.1 == .string("redacted"))

        settings.personIDs = .pseudonymise
        settings.key = Array("site-secret".utf8)
        let filter = PrivacyFilter(settings)
        let withKey = filter.apply(to: [("subject", .string("P-0012")), ("subject_hex", .string("d4c6413132ff34"))])
        #expect(withKey.map(\.0) == ["subject"])
        #expect(withKey.first?.1 == filter.apply(to: [("person", .string("P-0012"))]).first?.1)
    }

    @Test func plainSettingsLeaveFieldsAlone() {
        let filter = PrivacyFilter(GatewayConfiguration.Privacy())
        let fields: [(String, JSONValue)] = [("person", .string("P-1")), ("plate", .string("云A12345"))]
        #expect(JSONValue.object(filter.apply(to: fields)) == .object(fields))
    }

    /// Issue 19 item 10: replay applies the privacy settings in force, whatever they were when the event was journalled.
    @Test func replayPseudonymisesAndMasksEventsJournalledInTheClearAndKeepsFilteredOnesByteForByte() {
        var settings = GatewayConfiguration.Privacy()
        settings.personIDs = .pseudonymise
        settings.plates = .mask
        settings.key = Array("site-secret".utf8)
        let filter = PrivacyFilter(settings)
        let clear = #"{"specversion":"1.0","id":"s/d/1","type":"access.granted","data":{"device":"door-3e","person":"P-0012","plate":"云A12345","score":0.934}}"#
        guard let replayed = filter.replayed(payload: clear),
              case let .object(data)? = (try? JSONValue(parsing: replayed))?["data"] else { Issue.record("not replayed"); return }
        let person = data.first { $0.0 == "person" }?.1
        #expect(person == filter.apply(to: [("person", .string("P-0012"))])[0].1)
        #expect(data.first { $0.0 == "plate" }?.1 == .string("云A***45"))
        #expect(!replayed.contains("P-0012") && !replayed.contains("12345"))
        // Journalled under these settings: unchanged, not pseudonymised twice.
        #expect(filter.replayed(payload: replayed) == replayed)
        // Privacy off: every payload as journalled; on, a payload that cannot be read is withheld.
        #expect(PrivacyFilter(GatewayConfiguration.Privacy()).replayed(payload: clear) == clear)
        #expect(filter.replayed(payload: "not json") == nil)
    }
}
