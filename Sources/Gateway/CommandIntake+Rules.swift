import AccessModel
import DeviceProfiles
import RequestAuthority

/// Rules 1–6 of SPEC 4.1 as a pure function: no journal, no bus, no clock of its own, so every rule and their
/// order are tested without a broker (`CommandRuleTests`). `decide` is the shell around it.
extension CommandIntake {
    /// What rules 1–6 let through: everything the claim (rule 7) and the bus write (rules 8 and 9) need.
    struct Screened: Sendable {
        var envelope: RequestEnvelope
        var issuer: String
        var device: GatewayConfiguration.Device
        var block: CommandBlock
        var definition: CommandDefinition
        var argument: UInt16
        /// `time` + min(`ttl_ms`, `max_ttl`) (`default_ttl` without `ttl_ms`), on the wall clock of the request.
        var deadline: Timestamp
    }

    enum Screening: Sendable {
        /// The first rule that failed, as its outcome.
        case decided(Decision)
        case passed(Screened)
    }

    /// Rules 1–6 in order, the first that fails being the outcome. Fills `request` with what it learns on the way
    /// (device, command, envelope, args, issuer once authenticated), which the reply and the audit event carry
    /// whatever the outcome. `configured` looks a device up in the configuration in force.
    static func screen(_ request: inout Request, commands: GatewayConfiguration.Commands, authority: RequestAuthority,
                       configured: (String) -> GatewayConfiguration.Device?) -> Screening {
        let levels = request.message.topic.split(separator: "/", omittingEmptySubsequences: false)
        if levels.count >= 3, levels[levels.count - 2] == "command" {
            request.device = String(levels[levels.count - 3])
            request.command = String(levels[levels.count - 1])
        }
        // 1. retained
        if request.message.retained { return .decided(.rejected(.retained)) }
        // 2. malformed
        guard let device = request.device, let command = request.command,
              case let .success(envelope) = RequestEnvelope.parse(request.message.payload), let time = envelope.time
        else { return .decided(.rejected(.malformed)) }
        request.envelope = envelope
        if let args = envelope.body["args"] {
            guard case let .object(members) = args else { return .decided(.rejected(.malformed)) }
            request.args = members
        }
        // 3. authenticated
        let authentication = authority.authenticate(issuer: envelope.issuer, topic: request.message.topic,
                                                    payload: request.message.payload, signature: request.message.signature)
        guard case let .accepted(issuer) = authentication else { return .decided(authentication) }
        request.issuer = issuer
        // 4. permitted
        let permission = authority.authorise(issuer: issuer, device: device, action: command)
        guard permission.isAccepted else { return .decided(permission) }
        // 5. device, command, argument
        guard let configuration = configured(device) else { return .decided(.rejected(.unknownDevice)) }
        guard let block = configuration.profile.commands, let definition = block.command(named: command) else {
            return .decided(.rejected(.unknownCommand))
        }
        guard case let .success(argument) = definition.argumentWord(for: request.args) else {
            return .decided(.rejected(.badArgument))
        }
        // 6. clock and deadline, at receipt
        let deadline = envelope.deadline(defaultTTL: commands.defaultTTLMillis, maxTTL: commands.maxTTLMillis)!
        if let timing = RequestAuthority.timing(sent: time, deadline: deadline, now: request.arrived) { return .decided(timing) }
        return .passed(Screened(envelope: envelope, issuer: issuer, device: configuration, block: block, definition: definition,
                                argument: argument, deadline: deadline))
    }
}
