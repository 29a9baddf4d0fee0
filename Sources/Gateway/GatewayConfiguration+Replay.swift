import DeviceProfiles

extension GatewayConfiguration {
    /// The `replay:` section (SPEC 4.2). Replay requests are signed and authorised by the issuers of `commands:`
    /// (permission `replay`), so it is on when commands are, unless `enabled: false`.
    public struct Replay: Sendable {
        public var enabled = false
        /// Replayed events per second at most; live events go first whatever the rate.
        public var maxRate = 2000

        public init() {}
    }

    /// The topic replay requests arrive on: `{prefix}/{site}/gateway/{gateway}/replay`.
    public var replayTopic: String { "\(mqtt.topicPrefix)/\(site)/gateway/\(gatewayID)/replay" }

    static func parseReplay(_ value: YAMLValue?, commands: Commands, log: ProblemLog) -> Replay {
        var replay = Replay()
        replay.enabled = commands.enabled
        guard let value, let fields = value.mapping(log, allowed: ["enabled", "max_rate"]) else { return replay }
        replay.enabled = fields["enabled"]?.bool(log) ?? commands.enabled
        if replay.enabled, !commands.enabled, let enabled = fields["enabled"] {
            log.report(at: enabled, "replay needs commands.enabled: true (its requests are signed and authorised by commands.issuers)")
        }
        if let rateValue = fields["max_rate"], let text = rateValue.string(log) {
            let number = text.hasSuffix("/s") ? String(text.dropLast(2)) : text
            if let rate = Int(number), (1...100_000).contains(rate) { replay.maxRate = rate } else {
                log.report(at: rateValue, "'\(text)' is not a rate of 1 to 100000 events per second (example: 2000/s)")
            }
        }
        return replay
    }
}
