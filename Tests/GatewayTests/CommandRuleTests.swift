import AccessModel
@testable import Gateway
import Journal
import Testing

/// Rule 7 of SPEC 4.1 and the id memory's gap as pure values (issue 19 items 8 and 9), without a broker or a journal.
@Suite struct CommandRuleTests {
    static func first(device: String = "door-3e", command: String = "open", args: String? = #"{"door":1}"#) -> CommandRequestRecord {
        CommandRequestRecord(id: "r-1", issuer: "pm-kunming", device: device, command: command, args: args, received: .now)
    }

    @Test func anIDIsTheSameRequestOnlyForTheSameDeviceCommandAndArguments() throws {
        let args = CommandIntake.canonical([("door", .int(1))])
        #expect(CommandIntake.isSameRequest(Self.first(), device: "door-3e", command: "open", args: args))
        #expect(!CommandIntake.isSameRequest(Self.first(), device: "gate-1", command: "open", args: args))
        #expect(!CommandIntake.isSameRequest(Self.first(), device: "door-3e", command: "close", args: args))
        #expect(!CommandIntake.isSameRequest(Self.first(), device: "door-3e", command: "open", args: CommandIntake.canonical([("door", .int(2))])))
        // Arguments unknown (an id taken over from an older journal): device and command decide.
        #expect(CommandIntake.isSameRequest(Self.first(args: nil), device: "door-3e", command: "open", args: "{}"))
        // Key order does not make another request.
        #expect(CommandIntake.canonical([("b", .int(2)), ("a", .int(1))]) == CommandIntake.canonical([("a", .int(1)), ("b", .int(2))]))
    }

    @Test func aNewIDMemoryRefusesCommandsForMaxTTLAndALaterLossExtendsTheGap() {
        let start = ContinuousClock.now
        var gap = CommandMemoryGap()
        #expect(gap.refusing(at: start) == nil)
        gap.refuse(for: .seconds(60), from: start)
        #expect(gap.refusing(at: start + .seconds(59)) == start + .seconds(60))
        #expect(gap.refusing(at: start + .seconds(60)) == nil)
        gap.refuse(for: .seconds(60), from: start + .seconds(30))
        #expect(gap.refusing(at: start + .seconds(89)) != nil)
        gap.refuse(for: .seconds(10), from: start + .seconds(31))
        #expect(gap.refusing(at: start + .seconds(89)) == start + .seconds(90), "a shorter gap never shortens the one running")
    }
}
