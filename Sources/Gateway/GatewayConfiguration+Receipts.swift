import DeviceProfiles
import RequestAuthority

extension GatewayConfiguration {
    /// The `receipts:` section (SPEC 4.3): off by default; MQTT 5 and an issuer of `commands.issuers` whose `allow`
    /// rules grant `receipt` for this gateway (`- { devices: ["*"], commands: [receipt] }`).
    public struct Receipts: Sendable {
        public var enabled = false
        /// An event published but not confirmed this long after its last publication is published again.
        public var resendAfterMillis: Int64 = 60_000

        public init() {}
    }

    /// The topic the centre's receipts arrive on (retained): `{prefix}/{site}/gateway/{gateway}/receipt`.
    public var receiptTopic: String { "\(mqtt.topicPrefix)/\(site)/gateway/\(gatewayID)/receipt" }

    static func parseReceipts(_ value: YAMLValue?, gatewayID: String, mqtt: MQTT, commands: Commands, log: ProblemLog) -> Receipts {
        var receipts = Receipts()
        guard let value, let fields = value.mapping(log, allowed: ["enabled", "resend_after"]) else { return receipts }
        receipts.enabled = fields["enabled"]?.bool(log) ?? false
        receipts.resendAfterMillis = fields["resend_after"]?.milliseconds(log, in: 1_000...86_400_000) ?? 60_000
        if receipts.enabled, let enabled = fields["enabled"] {
            if mqtt.protocolVersion != .v5 {
                log.report(at: enabled, "receipts need MQTT 5 (the signature user property of the centre's receipts); mqtt.protocol is \(mqtt.protocolVersion.rawValue)")
            }
            let granted = commands.issuers.contains { $0.publicKey != nil && $0.permits(device: gatewayID, action: RequestAuthority.receiptPermission) }
            if !granted {
                log.report(at: enabled, """
                    receipts need an issuer under commands.issuers whose allow rules grant 'receipt' (for example \
                    allow: [{ devices: ["*"], commands: [receipt] }], with the centre's public_key_file): without one every receipt is ignored
                    """)
            }
        }
        return receipts
    }
}
