import AccessModel
import Foundation

/// Decides who sent a request and whether they may (SPEC 4.1 rules 3, 4 and 6), for commands and for replay.
/// Pure: no broker, no journal, no clock of its own; every answer is a `Decision`.
public struct RequestAuthority: Sendable {
    /// The issuer id of requests accepted without a signature under `require_signature: false`.
    public static let unsignedIssuer = "unsigned"
    /// How far ahead of the gateway's clock a request's `time` may be (rule 6).
    public static let clockTolerance: Int64 = 5_000

    public var issuers: [String: Issuer]
    public var requireSignature: Bool

    public init(issuers: [Issuer], requireSignature: Bool = true) {
        self.issuers = Dictionary(issuers.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        self.requireSignature = requireSignature
    }

    /// The bytes an issuer signs: the UTF-8 topic, a newline, then the payload exactly as published.
    public static func signedBytes(topic: String, payload: some Collection<UInt8>) -> [UInt8] {
        var bytes = Array(topic.utf8)
        bytes.reserveCapacity(bytes.count + 1 + payload.count)
        bytes.append(0x0A)
        bytes.append(contentsOf: payload)
        return bytes
    }

    /// The base64 signature an issuer's key gives a request (the MQTT 5 user property `signature`).
    public static func signature(topic: String, payload: some Collection<UInt8>, key: Ed25519PrivateKey) throws(CryptoError) -> String {
        Data(try key.sign(signedBytes(topic: topic, payload: payload))).base64EncodedString()
    }

    /// Rule 3: the claimed issuer is known and `signature` (base64) is its signature of `topic + "\n" + payload`.
    /// Without a signature and with `require_signature: false` the request counts as issuer `unsigned`; a
    /// signature that is present is always checked.
    public func authenticate(issuer claimed: String, topic: String, payload: some Collection<UInt8>, signature: String?) -> Decision {
        guard let signature else {
            return requireSignature ? .rejected(.unauthenticated) : .accepted(issuer: Self.unsignedIssuer)
        }
        guard let issuer = issuers[claimed], let key = issuer.publicKey,
              signature.utf8.count <= 128, let raw = Data(base64Encoded: signature)
        else { return .rejected(.unauthenticated) }
        return key.verify(signature: Array(raw), of: Self.signedBytes(topic: topic, payload: payload))
            ? .accepted(issuer: issuer.id) : .rejected(.unauthenticated)
    }

    /// Rule 4: the issuer's `allow` rules cover `device` and `action`. The `unsigned` issuer has the rules of an
    /// issuer configured with that id, or, when none is, every permission (signatures off is a lab setting).
    public func authorise(issuer id: String, device: String, action: String) -> Decision {
        if let issuer = issuers[id] {
            return issuer.permits(device: device, action: action) ? .accepted(issuer: id) : .rejected(.notPermitted)
        }
        if id == Self.unsignedIssuer, !requireSignature { return .accepted(issuer: id) }
        return .rejected(.notPermitted)
    }

    /// Rule 6 at any moment: `clock` when the request claims a time too far ahead, `expired` past the deadline.
    public static func timing(sent: Timestamp, deadline: Timestamp, now: Timestamp) -> Decision? {
        if sent.millisecondsSinceEpoch > now.millisecondsSinceEpoch + clockTolerance { return .rejected(.clock) }
        if now >= deadline { return .expired }
        return nil
    }
}
