import AccessModel

/// The gateway's retained status (SPEC section 4): published online on every (re)connect, with the offline
/// payload as the Last Will on the same topic and published by `stop` before a clean disconnect.
public struct GatewayStatus: Sendable {
    public var topic: String
    /// Built at each connect, so it can carry the time the connection came up.
    public var onlinePayload: @Sendable () -> String
    public var offlinePayload: String

    public init(topic: String, offlinePayload: String = #"{"state":"offline"}"#,
                onlinePayload: @escaping @Sendable () -> String) {
        self.topic = topic
        self.offlinePayload = offlinePayload
        self.onlinePayload = onlinePayload
    }

    /// `{prefix}/{site}/gateway/{gateway}/status` with `{"state":"online","gateway":…,"version":…,"started":…,"since":…}`:
    /// `started` is when this gateway process started (made once, at start), `since` when this connection came up.
    public static func gateway(prefix: String, site: String, gateway: String) -> GatewayStatus {
        let started = Timestamp.now
        return GatewayStatus(topic: "\(prefix)/\(site)/gateway/\(gateway)/status") {
            JSONValue.object([
                ("state", .string("online")),
                ("gateway", .string(gateway)),
                ("version", .string(BuildInfo.version)),
                ("started", .string(started.rfc3339)),
                ("since", .string(Timestamp.now.rfc3339)),
            ]).serialized
        }
    }

    var will: LastWill { LastWill(topic: topic, payload: offlinePayload, qos: 1, retain: true) }
}

/// What the publisher has done so far, for `accessgw status` and the metrics.
public struct MQTTPublisherCounters: Sendable, Equatable {
    /// Journal events handed to libmosquitto.
    public var published = 0
    /// Journal events the broker acknowledged (PUBACK); each is reported once.
    public var acknowledged = 0
    /// Publications the broker answered with a failure reason code (MQTT 5).
    public var rejected = 0
    /// Retained state and status publications handed over.
    public var statePublished = 0
    /// Connections the broker closed because another client connected with our client id (MQTT 5 reason 0x8E).
    public var sessionTakeovers = 0
    /// Accepted CONNACKs.
    public var connects = 0
    /// Refused connections, failed connection attempts and lost connections.
    public var connectionFailures = 0
    public var lastError: MQTTError?

    public init() {}
}
