import AccessModel
import Journal
import RequestAuthority

/// Applies `gateway.privacy`: person ids, cards and passes pseudonymised; plates masked or pseudonymised.
public struct PrivacyFilter: Sendable {
    let settings: GatewayConfiguration.Privacy

    public init(_ settings: GatewayConfiguration.Privacy) { self.settings = settings }

    static let personFields: Set<String> = ["person", "card", "pass"]

    public func apply(to fields: [(String, JSONValue)]) -> [(String, JSONValue)] {
        guard settings.personIDs != .plain || settings.plates != .plain else { return fields }
        // A subject that failed to decode may be anyone's identifier in raw bytes: with privacy on it never leaves.
        return fields.filter { $0.0 != "subject_hex" }.map { name, value in
            guard case let .string(text) = value else { return (name, value) }
            if name == "subject" {
                // A subject the profile does not classify (an unknown code, a method outside its enum) may be a
                // person id or a plate: it gets the stricter treatment, a pseudonym, or nothing without a key.
                return (name, .string(knowsPseudonyms ? pseudonym(text) : "redacted"))
            }
            if Self.personFields.contains(name), settings.personIDs == .pseudonymise {
                return (name, .string(pseudonym(text)))
            }
            if name == "plate" {
                switch settings.plates {
                case .plain: break
                case .mask: return (name, .string(Self.mask(plate: text)))
                case .pseudonymise: return (name, .string(pseudonym(text)))
                }
            }
            return (name, value)
        }
    }

    /// `k<version>:` and the HMAC-SHA256 of the value with the key, hex, first 16 characters: stable per value and
    /// key, not reversible; the prefix names the key, so it can be rotated.
    func pseudonym(_ text: String) -> String {
        "k\(settings.keyVersion):" + bareHMAC(text)
    }

    func bareHMAC(_ text: String) -> String {
        String(HMACSHA256.hex(key: settings.key, message: Array(text.utf8)).prefix(16))
    }

    /// What `accessgw forget` searches for one resident: the plain identifier and, with the configured key, its
    /// pseudonyms (with the key-version prefix, and bare as written before versions existed); for a plate also
    /// its masked form, which other plates with the same province and last two characters share.
    public func erasure(person: String) -> ErasureRequest {
        ErasureRequest(kind: "person", fields: ["person", "subject"], values: forms(of: person))
    }

    public func erasure(card: String) -> ErasureRequest {
        ErasureRequest(kind: "card", fields: ["card", "subject"], values: forms(of: card))
    }

    public func erasure(plate: String) -> ErasureRequest {
        ErasureRequest(kind: "plate", fields: ["plate", "subject"], values: forms(of: plate) + [Self.mask(plate: plate)])
    }

    /// Whether pseudonymised forms can be matched: only with the key.
    public var knowsPseudonyms: Bool { !settings.key.isEmpty }

    func forms(of value: String) -> [String] {
        knowsPseudonyms ? [value, pseudonym(value), bareHMAC(value)] : [value]
    }

    /// Keeps the province and the last two characters: 云A12345 → 云A***45.
    public static func mask(plate: String) -> String {
        let characters = Array(plate)
        guard characters.count > 4 else { return String(repeating: "*", count: characters.count) }
        return String(characters.prefix(2)) + "***" + String(characters.suffix(2))
    }
}
