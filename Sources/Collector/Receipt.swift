import AccessModel
import RequestAuthority

/// A signed receipt (SPEC 4.3): its retained topic, its JSON payload and the base64 Ed25519 signature of
/// `topic + "\n" + payload` that goes into the MQTT 5 user property `signature`.
public struct Receipt: Sendable, Equatable {
    public var topic: String
    public var payload: String
    public var signature: String

    /// `{prefix}/{site}/gateway/{gateway}/receipt`.
    public static func topic(prefix: String, key: ReceiptKey) -> String {
        "\(prefix)/\(key.site)/gateway/\(key.gateway)/receipt"
    }

    /// `{"issuer":…,"time":…,"epoch":…,"through":…,"ranges":[[a,b],…]}`, members in the SPEC's order.
    public static func payload(issuer: String, time: Timestamp, epoch: String, coverage: ReceiptCoverage) -> String {
        JSONValue.object([
            ("issuer", .string(issuer)), ("time", .string(time.rfc3339)), ("epoch", .string(epoch)),
            ("through", .int(coverage.through)),
            ("ranges", .array(coverage.ranges.map { .array([.int($0.lowerBound), .int($0.upperBound)]) })),
        ]).serialized
    }

    /// The receipt for `key` with `coverage`, signed by `key` of `issuer`.
    public static func signed(prefix: String, key: ReceiptKey, coverage: ReceiptCoverage, issuer: String,
                              privateKey: Ed25519PrivateKey, time: Timestamp = .now) throws(CryptoError) -> Receipt {
        let topic = topic(prefix: prefix, key: key)
        let payload = payload(issuer: issuer, time: time, epoch: key.epoch, coverage: coverage)
        let signature = try RequestAuthority.signature(topic: topic, payload: Array(payload.utf8), key: privateKey)
        return Receipt(topic: topic, payload: payload, signature: signature)
    }
}
