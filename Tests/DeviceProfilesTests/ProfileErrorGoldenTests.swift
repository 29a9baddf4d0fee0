import DeviceProfiles
import Foundation
import Testing

@Suite("profile errors (golden)")
struct ProfileErrorGoldenTests {
    static let cases = ["unknown-key", "bad-event-rules", "bad-values", "syntax"]

    @Test(arguments: cases)
    func profileErrorsMatchGolden(name: String) throws {
        let path = "\(Fixtures.goldenDirectory)/\(name).yaml"
        let expected = try String(contentsOfFile: "\(Fixtures.goldenDirectory)/\(name).expected", encoding: .utf8)
        do {
            _ = try DeviceProfile.load(path: path)
            Issue.record("\(name).yaml loaded without errors")
        } catch {
            let actual = error.description.replacingOccurrences(of: Fixtures.goldenDirectory + "/", with: "")
            #expect(actual + "\n" == expected)
        }
    }

    @Test func shippedProfilesLoadCleanly() throws {
        for name in ["face-door", "plate-reader", "elevator"] {
            let profile = try Fixtures.profile(name)
            #expect(profile.name == name)
            #expect(profile.eventLog?.fullReadCount == 106)
            #expect(profile.eventLog?.headerCount == 10)
        }
    }

    @Test func missingProfileSaysWhereItLooked() {
        let library = ProfileLibrary(directories: ["/nonexistent/a", "/nonexistent/b"])
        #expect(throws: ProfileLookupError.self) { try library.profile("lift") }
        do { _ = try library.profile("lift") } catch {
            #expect(error.description == "no profile named 'lift' (looked for lift.yaml in /nonexistent/a, /nonexistent/b)")
        }
    }
}
