import AccessModel
import DeviceProfiles
import RequestAuthority

extension GatewayConfiguration {
    /// The `commands:` section (SPEC 4.1): off by default; MQTT 5 only.
    public struct Commands: Sendable {
        public var enabled = false
        public var requireSignature = true
        public var defaultTTLMillis: Int64 = 10_000
        public var maxTTLMillis: Int64 = 60_000
        /// The most `max_ttl` may be (SPEC 4.1 rule 8).
        public static let maxTTLLimitMillis: Int64 = 60_000
        /// Issuers with their public keys read and their allow rules checked.
        public var issuers: [Issuer] = []

        public init() {}

        public var authority: RequestAuthority { RequestAuthority(issuers: issuers, requireSignature: requireSignature) }
    }

    /// The topic filter the gateway subscribes to: every device's every command of this site.
    public var commandTopicFilter: String { "\(mqtt.topicPrefix)/\(site)/+/command/+" }

    static func parseCommands(_ value: YAMLValue?, mqtt: MQTT, devices: [Device], log: ProblemLog) -> Commands {
        var commands = Commands()
        guard let value, let fields = value.mapping(log, allowed: ["enabled", "require_signature", "default_ttl", "max_ttl", "issuers"])
        else { return commands }
        commands.enabled = fields["enabled"]?.bool(log) ?? false
        commands.requireSignature = fields["require_signature"]?.bool(log) ?? true
        commands.defaultTTLMillis = fields["default_ttl"]?.milliseconds(log, in: 1...86_400_000) ?? 10_000
        commands.maxTTLMillis = fields["max_ttl"]?.milliseconds(log, in: 1...86_400_000) ?? 60_000
        if commands.enabled, mqtt.protocolVersion != .v5, let enabled = fields["enabled"] {
            log.report(at: enabled, "commands need MQTT 5 (signature user property, response topic, correlation data); mqtt.protocol is \(mqtt.protocolVersion.rawValue)")
        }
        if commands.maxTTLMillis <= 0, let maxTTL = fields["max_ttl"] { log.report(at: maxTTL, "max_ttl must be above 0") }
        // SPEC 4.1 rule 8: a request never waits longer than this for its bus, and a lost id memory refuses
        // commands for as long (rule 7).
        if commands.maxTTLMillis > Commands.maxTTLLimitMillis, let maxTTL = fields["max_ttl"] {
            log.report(at: maxTTL, "max_ttl may be at most 60s: a command never waits longer for its device")
            commands.maxTTLMillis = Commands.maxTTLLimitMillis
        }
        // Every command name some configured device's profile defines, and the replay and receipt permissions
        // (SPEC 4.2, 4.3).
        let known = Set(devices.flatMap { $0.profile.commands?.commands.map(\.name) ?? [] })
            .union(["replay", RequestAuthority.receiptPermission])
        var ids: Set<String> = []
        for issuerValue in fields["issuers"]?.sequence(log) ?? [] {
            guard let entry = issuerValue.mapping(log, allowed: ["id", "public_key_file", "allow"]),
                  let idValue = entry.required("id", log), let id = idValue.string(log) else { continue }
            guard RequestEnvelope.isRequestID(id) else {
                log.report(at: idValue, "issuer id '\(id)' must be 1-64 characters of A-Z a-z 0-9 . _ : -")
                continue
            }
            if !ids.insert(id).inserted { log.report(at: idValue, "issuer id '\(id)' is used twice") }
            var rules: [AllowRule] = []
            for ruleValue in entry["allow"]?.sequence(log) ?? [] {
                guard let rule = ruleValue.mapping(log, allowed: ["devices", "commands"]) else { continue }
                var patterns: [NamePattern] = []
                for globValue in rule.required("devices", log)?.sequence(log) ?? [] {
                    guard let text = globValue.string(log) else { continue }
                    if let pattern = NamePattern(text) { patterns.append(pattern) } else {
                        log.report(at: globValue, "'\(text)' is not a device glob (letters, digits, * and ?; no /, +, # or spaces)")
                    }
                }
                var names: Set<String> = []
                for nameValue in rule.required("commands", log)?.sequence(log) ?? [] {
                    guard let name = nameValue.string(log) else { continue }
                    if known.contains(name) { names.insert(name) } else {
                        log.report(at: nameValue, "no configured device's profile has a command '\(name)' (known: \(known.sorted().joined(separator: ", ")))")
                    }
                }
                rules.append(AllowRule(devices: patterns, commands: names))
            }
            if id == RequestAuthority.unsignedIssuer, entry["public_key_file"] == nil {
                commands.issuers.append(Issuer(id: id, publicKey: nil, allow: rules))
                continue
            }
            guard let keyValue = entry.required("public_key_file", log), let path = keyValue.string(log) else { continue }
            do {
                commands.issuers.append(try Issuer.load(id: id, publicKeyFile: path, allow: rules))
            } catch {
                log.report(at: keyValue, error.message)
            }
        }
        return commands
    }
}
