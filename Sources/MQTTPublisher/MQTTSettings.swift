/// The `mqtt:` section of the gateway configuration (SPEC section 2), resolved: the caller has read
/// `password_file` and turned durations into `Duration`s.
public struct MQTTSettings: Sendable, CustomStringConvertible {
    /// The MQTT protocol level sent in CONNECT (`MOSQ_OPT_PROTOCOL_VERSION`).
    public enum ProtocolVersion: String, Sendable, Equatable {
        case v311 = "3.1.1"
        case v5 = "5"
    }

    /// Files for `mosquitto_tls_set`: the CA that signed the broker, and optionally a client certificate.
    public struct TLS: Sendable, Equatable {
        public var caFile: String
        public var certFile: String?
        public var keyFile: String?

        public init(caFile: String, certFile: String? = nil, keyFile: String? = nil) {
            self.caFile = caFile
            self.certFile = certFile
            self.keyFile = keyFile
        }
    }

    public var host: String
    public var port: UInt16
    public var tls: TLS?
    public var username: String?
    /// The secret read from `password_file`; never logged, never part of `description`.
    public var password: String?
    public var clientID: String
    public var protocolVersion: ProtocolVersion
    /// QoS of events and retained state; the delivery guarantees need 1.
    public var qos: Int32
    public var keepalive: Duration
    /// How many QoS 1 publications may wait for their PUBACK at once (`MOSQ_OPT_SEND_MAXIMUM`).
    public var maxInflight: Int
    /// First and longest wait between reconnect attempts; libmosquitto grows it quadratically in between.
    public var reconnectDelay: ClosedRange<Duration>
    /// MQTT 5 Session Expiry Interval in seconds; 0 (the default) is a clean session. Above 0 the broker keeps the
    /// session (its subscriptions, and QoS 1 messages for them) that long after a disconnect.
    public var sessionExpirySeconds: UInt32 = 0
    /// MQTT 5 Maximum Packet Size sent in CONNECT: the broker drops (and never sends) larger messages to this
    /// client, so an oversized request costs the gateway nothing. Nil: no limit declared.
    public var maximumPacketSize: UInt32?

    public init(host: String, port: UInt16 = 1883, tls: TLS? = nil, username: String? = nil, password: String? = nil,
                clientID: String, protocolVersion: ProtocolVersion = .v5, qos: Int32 = 1,
                keepalive: Duration = .seconds(30), maxInflight: Int = 100,
                reconnectDelay: ClosedRange<Duration> = .seconds(1) ... .seconds(30)) {
        self.host = host
        self.port = port
        self.tls = tls
        self.username = username
        self.password = password
        self.clientID = clientID
        self.protocolVersion = protocolVersion
        self.qos = qos
        self.keepalive = keepalive
        self.maxInflight = maxInflight
        self.reconnectDelay = reconnectDelay
    }

    /// `host:port`, as operators name a broker.
    public var broker: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public var description: String {
        var parts = ["mqtt\(tls == nil ? "" : "s")://\(broker)", "client_id=\(clientID)", "protocol=\(protocolVersion.rawValue)",
                     "qos=\(qos)", "keepalive=\(keepalive)", "max_inflight=\(maxInflight)"]
        if sessionExpirySeconds > 0 { parts.append("session_expiry=\(sessionExpirySeconds)s") }
        if let maximumPacketSize, protocolVersion == .v5 { parts.append("maximum_packet_size=\(maximumPacketSize)") }
        if let username { parts.append("username=\(username)") }
        if password != nil { parts.append("password=<set>") }
        return parts.joined(separator: " ")
    }
}

/// The message the broker publishes for us if the connection dies without a DISCONNECT (`mosquitto_will_set`).
public struct LastWill: Sendable, Equatable {
    public var topic: String
    public var payload: String
    public var qos: Int32
    public var retain: Bool

    public init(topic: String, payload: String, qos: Int32 = 1, retain: Bool = true) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
    }
}
