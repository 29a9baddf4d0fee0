import CMosquitto
#if canImport(Glibc)
import Glibc
#endif

/// A libmosquitto failure or a broker refusal, worded for the operator: the broker, what failed and why.
public struct MQTTError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure `code` is.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        let name: String
        /// `code` is a `MOSQ_ERR_*` value returned by a libmosquitto call.
        public static let library = Kind(name: "library")
        /// `code` is an `errno` value (the call returned `MOSQ_ERR_ERRNO`).
        public static let system = Kind(name: "errno")
        /// `code` is a CONNACK return code (3.1.1) or reason code (5) by which the broker refused us.
        public static let connectionRefused = Kind(name: "connack")
        /// `code` is a PUBACK reason code of 0x80 or above: the broker did not take the message.
        public static let publicationRejected = Kind(name: "puback")
        /// `code` is the MQTT 5 reason code of a DISCONNECT the broker sent us (0x80 and above).
        public static let disconnectedByBroker = Kind(name: "disconnect")
        public var description: String { name }
    }

    public var kind: Kind
    public var code: Int32
    /// The libmosquitto function (or protocol step) that failed, such as `mosquitto_connect_async`.
    public var call: String
    /// `host:port` of the broker.
    public var broker: String
    /// One sentence for the operator.
    public var message: String

    public init(kind: Kind, code: Int32, call: String, broker: String, message: String) {
        self.kind = kind
        self.code = code
        self.call = call
        self.broker = broker
        self.message = message
    }

    public var description: String { message }

    /// Decodes a `MOSQ_ERR_*` return of `call`; reads `errno` for `MOSQ_ERR_ERRNO`, so call it at once.
    static func library(_ rc: Int32, call: String, broker: String, errno savedErrno: Int32 = errno) -> MQTTError {
        if rc == Int32(MOSQ_ERR_ERRNO.rawValue) {
            let reason = String(cString: strerror(savedErrno))
            return MQTTError(kind: .system, code: savedErrno, call: call, broker: broker,
                             message: "broker \(broker): \(call) failed: \(sentenceCase(reason))")
        }
        let reason = String(cString: mosquitto_strerror(rc))
        return MQTTError(kind: .library, code: rc, call: call, broker: broker,
                         message: "broker \(broker): \(call) failed: \(sentenceCase(reason))")
    }

    /// A refused CONNACK: `mosquitto_connack_string` for 3.1.1 codes, `mosquitto_reason_string` for MQTT 5.
    static func refused(_ code: Int32, protocolVersion: MQTTSettings.ProtocolVersion, broker: String) -> MQTTError {
        var reason = protocolVersion == .v5 && code >= 0x80
            ? String(cString: mosquitto_reason_string(code))
            : String(cString: mosquitto_connack_string(code))
        for prefix in ["Connection Refused: ", "Connection refused: "] where reason.hasPrefix(prefix) {
            reason.removeFirst(prefix.count)
        }
        return MQTTError(kind: .connectionRefused, code: code, call: "CONNACK", broker: broker,
                         message: "broker \(broker) refused the connection: \(sentenceCase(reason))")
    }

    /// The connection ended without our DISCONNECT; `rc` is what the network thread reported.
    static func lost(_ rc: Int32, broker: String, errno savedErrno: Int32) -> MQTTError {
        let cause = rc == Int32(MOSQ_ERR_ERRNO.rawValue)
            ? String(cString: strerror(savedErrno)) : String(cString: mosquitto_strerror(rc))
        return MQTTError(kind: rc == Int32(MOSQ_ERR_ERRNO.rawValue) ? .system : .library,
                         code: rc == Int32(MOSQ_ERR_ERRNO.rawValue) ? savedErrno : rc,
                         call: "connection", broker: broker,
                         message: "connection to broker \(broker) lost: \(sentenceCase(cause))")
    }

    /// MQTT 5 DISCONNECT reason 0x8E: the broker handed our session to a newer client with the same id.
    static let sessionTakenOver: Int32 = 0x8E

    /// The broker ended the connection with an MQTT 5 DISCONNECT whose reason code is `reason`, said in words.
    static func disconnected(byBroker reason: Int32, clientID: String, broker: String) -> MQTTError {
        let cause = reason == sessionTakenOver
            ? "another client connected with client id \(clientID) (session taken over); every gateway on a broker needs "
                + "its own mqtt.client_id"
            : "\(sentenceCase(String(cString: mosquitto_reason_string(reason)))) (MQTT 5 reason code \(reason))"
        return MQTTError(kind: .disconnectedByBroker, code: reason, call: "DISCONNECT", broker: broker,
                         message: "broker \(broker) closed the connection: \(cause)")
    }

    /// A broker that does not send MQTT 5 reason codes on a takeover (mosquitto 2.0.11, and every 3.1.1 session)
    /// just closes the connection; when it keeps doing so while accepting each reconnect at once, the cause is
    /// almost always a second client with our id.
    static func probablyTakenOver(closes: Int, within seconds: Int, clientID: String, broker: String) -> MQTTError {
        MQTTError(kind: .library, code: Int32(MOSQ_ERR_CONN_LOST.rawValue), call: "connection", broker: broker,
                  message: "broker \(broker) closed the connection \(closes) times within \(seconds) s, each time accepting the "
                      + "reconnect at once: probably another client connected with client id \(clientID) (session taken over); "
                      + "every gateway on a broker needs its own mqtt.client_id")
    }

    /// A connection attempt failed before any CONNACK.
    static func unreachable(_ rc: Int32, broker: String, errno savedErrno: Int32, detail: String? = nil) -> MQTTError {
        var error = lost(rc, broker: broker, errno: savedErrno)
        let cause = rc == Int32(MOSQ_ERR_ERRNO.rawValue)
            ? String(cString: strerror(savedErrno)) : String(cString: mosquitto_strerror(rc))
        error.call = "connect"
        error.message = "cannot connect to broker \(broker): \(sentenceCase(cause))"
        if rc == Int32(MOSQ_ERR_TLS.rawValue), let detail { error.message += " (\(detail))" }
        return error
    }

    /// A PUBACK with a failure reason code: the broker did not accept the message.
    static func rejected(_ reasonCode: Int32, topic: String?, broker: String) -> MQTTError {
        let reason = String(cString: mosquitto_reason_string(reasonCode))
        return MQTTError(kind: .publicationRejected, code: reasonCode, call: "PUBACK", broker: broker,
                         message: "broker \(broker) rejected a publication\(topic.map { " on \($0)" } ?? ""): \(sentenceCase(reason))")
    }
}

/// Lower-cases the first letter and drops a trailing period, so library strings read inside a sentence.
func sentenceCase(_ text: String) -> String {
    var text = text
    while text.hasSuffix(".") || text.hasSuffix(" ") { text.removeLast() }
    guard let first = text.first else { return text }
    // Keep acronyms such as "TLS error" intact.
    let second = text.dropFirst().first
    if first.isUppercase, !(second?.isUppercase ?? false) {
        return first.lowercased() + text.dropFirst()
    }
    return text
}
