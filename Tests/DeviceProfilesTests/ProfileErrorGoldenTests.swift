import DeviceProfiles
import Foundation
import Testing

@Suite("profile errors (golden)")
struct ProfileErrorGoldenTests {
    static let cases = ["unknown-key", "bad-event-rules", "bad-values", "syntax", "bad-commands", "bad-map-rules", "addresses-past-65535", "bad-map-commands"]

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

    /// Issue 7 finding 13: a register block past address 65535 passed `check` and trapped in `run`.
    @Test func aRegisterBlockPastTheLastAddressIsRefused() throws {
        let text = try String(contentsOfFile: "\(Fixtures.goldenDirectory)/addresses-past-65535.yaml", encoding: .utf8)
            .replacingOccurrences(of: "address: 65520", with: "address: 65530")
        #expect(throws: ConfigurationError.self) { try DeviceProfile.parse(text, file: "state.yaml") }
        do { _ = try DeviceProfile.parse(text, file: "state.yaml") } catch {
            #expect(error.description.hasPrefix("state.yaml:4: state: registers 65530...65539 run past the last Modbus address 65535"))
        }
    }

    @Test func shippedProfilesLoadCleanly() throws {
        for name in ["face-door", "plate-reader", "elevator"] {
            let profile = try Fixtures.profile(name)
            #expect(profile.name == name)
            #expect(profile.eventLog?.fullReadCount == 106)
            #expect(profile.eventLog?.headerCount == 10)
            #expect(profile.eventLog?.ackWithRead == true, "the generic devices take function 23")
        }
    }

    /// `ack_with_read` is a yes or no, checked with file:line like every other key; left out, it is no.
    @Test func ackWithReadIsValidatedWithItsLine() throws {
        let path = "\(Fixtures.devicesDirectory)/face-door.yaml"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let line = try #require(text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains("ack_with_read:") }) + 1
        do {
            _ = try DeviceProfile.parse(text.replacingOccurrences(of: "ack_with_read: true", with: "ack_with_read: sometimes"), file: "door.yaml")
            Issue.record("ack_with_read: sometimes was accepted")
        } catch {
            #expect(error.description == "door.yaml:\(line): event_log.ack_with_read: expected true or false, found 'sometimes'")
        }
        let without = try DeviceProfile.parse(text.replacingOccurrences(of: "ack_with_read: true", with: ""), file: "door.yaml")
        #expect(without.eventLog?.ackWithRead == false)
    }

    @Test func shippedProfilesDefineTheSPECCommands() throws {
        let door = try #require(try Fixtures.profile("face-door").commands)
        #expect(door.address == 30 && door.lastCommandIDAddress == 34)
        #expect(door.commands == [CommandDefinition(name: "open", code: 1,
                                                    argument: CommandArgument(name: "door", signed: false, range: 1...4, defaultValue: 1))])
        #expect(try Fixtures.profile("plate-reader").commands?.commands.map(\.name) == ["open", "close"])
        let call = try #require(try Fixtures.profile("elevator").commands?.command(named: "call"))
        #expect(call.argumentWord(for: [("floor", .int(-2))]) == .success(UInt16(bitPattern: -2)))
        #expect(call.argumentWord(for: [("floor", .int(129))]) == .failure(.outOfRange("floor")))
        #expect(call.argumentWord(for: [("floor", .string("12"))]) == .failure(.outOfRange("floor")))
        #expect(call.argumentWord(for: []) == .failure(.missing("floor")))
        #expect(call.argumentWord(for: [("floor", .int(3)), ("speed", .int(1))]) == .failure(.unknown("speed")))
        #expect(door.commands[0].argumentWord(for: []) == .success(1))
    }

    @Test func missingProfileSaysWhereItLooked() {
        let library = ProfileLibrary(directories: ["/nonexistent/a", "/nonexistent/b"])
        #expect(throws: ProfileLookupError.self) { try library.profile("lift") }
        do { _ = try library.profile("lift") } catch {
            #expect(error.description == "no profile named 'lift' (looked for lift.yaml in /nonexistent/a, /nonexistent/b)")
        }
    }
}
