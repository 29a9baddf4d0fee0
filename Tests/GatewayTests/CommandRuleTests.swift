import AccessModel
import Foundation
@testable import Gateway
import Journal
import MQTTPublisher
import RequestAuthority
import Testing
import TestSupport

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

    /// A configuration with a face door and an elevator, and issuer pm-kunming allowed `open` on doors only.
    static func rules() throws -> (GatewayConfiguration, Ed25519PrivateKey) {
        let directory = try makeTemporaryDirectory("command-rules")
        let key = try Ed25519PrivateKey()
        try key.publicKey.pem().write(toFile: directory.appendingPathComponent("pm.pub").path, atomically: true, encoding: .utf8)
        let yaml = """
        gateway: { id: gw-01, site: s, journal: \(directory.path)/journal.db }
        mqtt: { host: 127.0.0.1 }
        buses:
          - { id: lan, tcp: { host: 127.0.0.1, port: 502 } }
        devices:
          - { id: door-3e, profile: face-door, bus: lan, unit: 1 }
          - { id: lift-2, profile: elevator, bus: lan, unit: 3 }
        commands:
          enabled: true
          default_ttl: 10s
          max_ttl: 30s
          issuers:
            - id: pm-kunming
              public_key_file: \(directory.path)/pm.pub
              allow:
                - { devices: ["door-*", "ghost"], commands: [open, call] }
        profile_dirs: [\(ConfigurationGoldenTests.devices)]
        """
        let path = directory.appendingPathComponent("gateway.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return (try GatewayConfiguration.load(path: path), key)
    }

    static func screen(_ configuration: GatewayConfiguration, _ key: Ed25519PrivateKey?, device: String = "door-3e",
                       command: String = "open", payload: String? = nil, time: Timestamp = .now, ttl: String = ",\"ttl_ms\":60000",
                       retained: Bool = false) throws -> (CommandIntake.Screening, CommandIntake.Request) {
        let topic = "accessgw/s/\(device)/command/\(command)"
        let body = payload ?? #"{"id":"r-1","issuer":"pm-kunming","time":"\#(time.rfc3339)"\#(ttl),"args":{"door":1}}"#
        let signature = try key.map { try RequestAuthority.signature(topic: topic, payload: Array(body.utf8), key: $0) }
        var request = CommandIntake.Request(message: IncomingMessage(topic: topic, payload: Array(body.utf8), retained: retained,
                                                                     signature: signature),
                                            arrived: .now, started: .now)
        let screening = CommandIntake.screen(&request, commands: configuration.commands, authority: configuration.commands.authority,
                                             configured: { id in configuration.devices.first { $0.id == id } })
        return (screening, request)
    }

    static func decision(_ screening: CommandIntake.Screening) -> Decision? {
        if case let .decided(decision) = screening { return decision }
        return nil
    }

    @Test func rulesOneToSixDecideInOrderWithoutABrokerOrAJournal() throws {
        let (configuration, key) = try Self.rules()
        let forger = try Ed25519PrivateKey()
        #expect(Self.decision(try Self.screen(configuration, key, payload: "garbage", retained: true).0) == .rejected(.retained),
                "rule 1 before rule 2")
        #expect(Self.decision(try Self.screen(configuration, key, payload: "garbage").0) == .rejected(.malformed))
        #expect(Self.decision(try Self.screen(configuration, forger).0) == .rejected(.unauthenticated))
        #expect(Self.decision(try Self.screen(configuration, nil).0) == .rejected(.unauthenticated))
        let (notPermitted, request) = try Self.screen(configuration, key, device: "lift-2", command: "call")
        #expect(Self.decision(notPermitted) == .rejected(.notPermitted))
        #expect(request.issuer == "pm-kunming" && request.device == "lift-2", "authenticated before rule 4: audited under the device")
        #expect(Self.decision(try Self.screen(configuration, key, device: "ghost").0) == .rejected(.unknownDevice))
        #expect(Self.decision(try Self.screen(configuration, key, command: "call").0) == .rejected(.unknownCommand))
        let badArgument = #"{"id":"r-1","issuer":"pm-kunming","time":"\#(Timestamp.now.rfc3339)","args":{"door":99}}"#
        #expect(Self.decision(try Self.screen(configuration, key, payload: badArgument).0) == .rejected(.badArgument))
        let ahead = Timestamp(millisecondsSinceEpoch: Timestamp.now.millisecondsSinceEpoch + 60_000)
        #expect(Self.decision(try Self.screen(configuration, key, time: ahead).0) == .rejected(.clock))
        let old = Timestamp(millisecondsSinceEpoch: Timestamp.now.millisecondsSinceEpoch - 40_000)
        #expect(Self.decision(try Self.screen(configuration, key, time: old).0) == .expired, "ttl_ms 60 s is capped at max_ttl 30 s")

        let sent = Timestamp.now
        guard case let .passed(passed) = try Self.screen(configuration, key, time: sent).0 else {
            Issue.record("a valid request did not pass rules 1-6")
            return
        }
        #expect(passed.issuer == "pm-kunming" && passed.device.id == "door-3e" && passed.argument == 1)
        #expect(passed.deadline.millisecondsSinceEpoch == sent.millisecondsSinceEpoch + 30_000)
        guard case let .passed(defaulted) = try Self.screen(configuration, key, time: sent, ttl: "").0 else {
            Issue.record("a request without ttl_ms did not pass")
            return
        }
        #expect(defaulted.deadline.millisecondsSinceEpoch == sent.millisecondsSinceEpoch + 10_000, "default_ttl")
    }
}
