import CMosquitto
#if canImport(Glibc)
import Glibc
#endif

/// A PUBLISH received on a subscription, with the MQTT 5 properties a signed request uses.
public struct IncomingMessage: Sendable {
    public var topic: String
    public var payload: [UInt8]
    public var retained: Bool
    /// The user property `signature` (the first one, when a sender repeats it).
    public var signature: String?
    public var responseTopic: String?
    public var correlationData: [UInt8]?

    public init(topic: String, payload: [UInt8], retained: Bool = false, signature: String? = nil,
                responseTopic: String? = nil, correlationData: [UInt8]? = nil) {
        self.topic = topic
        self.payload = payload
        self.retained = retained
        self.signature = signature
        self.responseTopic = responseTopic
        self.correlationData = correlationData
    }

    /// Copies a libmosquitto message and reads its properties (`mosquitto_property_read_*`; each value it
    /// returns is malloc'd and freed here).
    init(_ message: mosquitto_message, properties: OpaquePointer?) {
        topic = message.topic.map { String(cString: $0) } ?? ""
        payload = message.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(message.payloadlen))) } ?? []
        retained = message.retain
        var property = properties
        var skipFirst = false
        while let current = property {
            var name: UnsafeMutablePointer<CChar>?
            var value: UnsafeMutablePointer<CChar>?
            property = mosquitto_property_read_string_pair(current, Int32(MQTT_PROP_USER_PROPERTY.rawValue), &name, &value, skipFirst)
            skipFirst = true
            defer { free(name); free(value) }
            guard property != nil, let name, let value else { break }
            if signature == nil, String(cString: name) == "signature" { signature = String(cString: value) }
        }
        var response: UnsafeMutablePointer<CChar>?
        if mosquitto_property_read_string(properties, Int32(MQTT_PROP_RESPONSE_TOPIC.rawValue), &response, false) != nil, let response {
            responseTopic = String(cString: response)
            free(response)
        }
        var data: UnsafeMutableRawPointer?
        var length: UInt16 = 0
        if mosquitto_property_read_binary(properties, Int32(MQTT_PROP_CORRELATION_DATA.rawValue), &data, &length, false) != nil {
            correlationData = data.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(length))) } ?? []
            free(data)
        }
    }
}

/// The MQTT 5 properties an outgoing request or reply carries.
public struct RequestProperties: Sendable {
    public var responseTopic: String?
    public var correlationData: [UInt8]?
    public var userProperties: [(String, String)]
    /// Content Type; when set, the UTF-8 payload format indicator is set too.
    public var contentType: String?
    /// Published retained (a receipt, SPEC 4.3: the latest reaches the gateway after any outage).
    public var retain = false

    public init(responseTopic: String? = nil, correlationData: [UInt8]? = nil, userProperties: [(String, String)] = [],
                contentType: String? = nil, retain: Bool = false) {
        self.responseTopic = responseTopic
        self.correlationData = correlationData
        self.userProperties = userProperties
        self.contentType = contentType
        self.retain = retain
    }
}
