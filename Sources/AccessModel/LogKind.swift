/// The kinds of log message an operator alerts on or filters by: each has a stable journald `MESSAGE_ID`
/// (`journalctl MESSAGE_ID=…`), and the noisy ones are rate-limited per device (or per broker) by the log handler.
///
/// A component tags a message with its kind through the metadata key `log.kind`:
/// `logger.notice("…", metadata: ["device": "door-3e", LogKind.key: "\(LogKind.modbusTimeout)"])`.
public struct LogKind: Sendable, Hashable, CustomStringConvertible {
    /// The metadata key that carries a kind's name.
    public static let key = "log.kind"

    /// Dotted name, as in logfmt's `log.kind=` and journald's `LOG_KIND=`.
    public let name: String
    /// 128-bit id in journald's format (32 lowercase hex digits). Never change one: operators' filters use it.
    public let messageID: String
    /// For rate-limited kinds, what a repeat is called in the summary ("… 37 more timeouts in the last 60 s").
    public let repeats: String?
    /// Kinds whose pending summaries this one ends (a broker connection ends the run of failed attempts).
    public let ends: [String]

    public var description: String { name }
    public var rateLimited: Bool { repeats != nil }

    init(_ name: String, _ messageID: String, repeats: String? = nil, ends: [String] = []) {
        self.name = name
        self.messageID = messageID
        self.repeats = repeats
        self.ends = ends
    }

    // Modbus transport errors of one device (rate-limited per device).
    public static let modbusTimeout = LogKind("modbus.timeout", "3edc38e75031486f95c7339c8c6f75de", repeats: "timeouts")
    public static let modbusBadReply = LogKind("modbus.bad_reply", "5f3acaeb1ad149be8d9e3b2738dfb2f8", repeats: "bad replies")
    public static let modbusException = LogKind("modbus.exception", "a2b28b0262874d11842fbe4b2ec112a5",
                                                repeats: "exception replies")
    public static let modbusConnection = LogKind("modbus.connection", "d1389f8c4b114626add26b6c997079a0",
                                                 repeats: "connection failures")
    public static let modbusError = LogKind("modbus.error", "b993358cce2f4ee39c3f2da296150c5f", repeats: "transport errors")
    // Device health.
    public static let deviceOffline = LogKind("device.offline", "6fc2b29298e8423381fb28c022bb20a5")
    public static let deviceOnline = LogKind("device.online", "dc2027ae8da249a5babf21d887718724")
    public static let eventsLost = LogKind("device.events_lost", "89a7c79bbc894393b0ee6d809ffe0948")
    /// A boot_id other than the one the log is read under, or a restart of its seq counter (rate-limited per device:
    /// a register that reads differently on every read is one line and a summary a minute).
    public static let deviceBootID = LogKind("device.boot_id", "74a44c4f7e28491fb18b9cc18c7e29e3", repeats: "boot_id changes")
    // The broker (rate-limited per broker: one ERROR, then summaries until it connects).
    public static let mqttConnected = LogKind("mqtt.connected", "254785b53a4045dcbf0fa069f3f66ec7",
                                              ends: ["mqtt.unreachable", "mqtt.refused", "mqtt.connection_lost"])
    public static let mqttUnreachable = LogKind("mqtt.unreachable", "3ceefe7d22c8477dbef8cb08f8c67d79",
                                                repeats: "failed connection attempts")
    public static let mqttRefused = LogKind("mqtt.refused", "af71bc51ddd5447f8652eba804ae85ed", repeats: "refused connections")
    public static let mqttConnectionLost = LogKind("mqtt.connection_lost", "a98b5cd42a264d7e918438357124ff45",
                                                   repeats: "lost connections")
    /// The broker refused a publication (PUBACK 0x80 or above, e.g. an ACL): one ERROR, then summaries.
    public static let mqttPublicationRefused = LogKind("mqtt.publication_refused", "8b641f354135472abfcd6056b36b7163",
                                                       repeats: "refused publications")
    // The daemon.
    public static let gatewayStarted = LogKind("gateway.started", "d6e7b31a32fb4116a6f8d07cd3415974")
    public static let gatewayReloaded = LogKind("gateway.reloaded", "5782c874325f4832b2c86edbd57a5fd0")
    public static let probeServed = LogKind("gateway.probe", "120b9795480146ae9d016cc4a637d23f")

    // The centre's collector (`accessgw collect`): PostgreSQL down is said once, then summarised until it is back.
    public static let databaseUnreachable = LogKind("collect.database_unreachable", "6b1f0c1c7d0a4f57a1f3f1d3b6a2e901",
                                                    repeats: "failed database attempts")
    public static let databaseReachable = LogKind("collect.database_reachable", "0d9e5b8f3c2a4e61b7d4a9c8e1f2a302",
                                                  ends: ["collect.database_unreachable"])
    public static let messageRejected = LogKind("collect.message_rejected", "9a4c2e7b1d3f4a85b6c0e8d2f4a1b703",
                                                repeats: "rejected messages")
    public static let eventConflict = LogKind("collect.conflict", "4e8b1a6c2d9f4b03a5c7e1d9f2b6a804", repeats: "conflicts")

    public static let all: [LogKind] = [
        modbusTimeout, modbusBadReply, modbusException, modbusConnection, modbusError, deviceOffline, deviceOnline,
        eventsLost, deviceBootID, mqttConnected, mqttUnreachable, mqttRefused, mqttConnectionLost, mqttPublicationRefused,
        gatewayStarted, gatewayReloaded, probeServed,
        databaseUnreachable, databaseReachable, messageRejected, eventConflict,
    ]
    static let byName = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// The kind named `name`, if it is one of ours.
    public static func named(_ name: String) -> LogKind? { byName[name] }
}
