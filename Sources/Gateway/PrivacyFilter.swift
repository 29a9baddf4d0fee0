import AccessModel
import RequestAuthority

/// Applies `gateway.privacy`: person ids, cards and passes pseudonymised; plates masked or pseudonymised.
public struct PrivacyFilter: Sendable {
    let settings: GatewayConfiguration.Privacy

    public init(_ settings: GatewayConfiguration.Privacy) { self.settings = settings }

    static let personFields: Set<String> = ["person", "card", "pass"]

    public func apply(to fields: [(String, JSONValue)]) -> [(String, JSONValue)] {
        guard settings.personIDs != .plain || settings.plates != .plain else { return fields }
        return fields.map { name, value in
            guard case let .string(text) = value else { return (name, value) }
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

    /// HMAC-SHA256 of the value with the key, hex, first 16 characters: stable per value, not reversible.
    func pseudonym(_ text: String) -> String {
        String(HMACSHA256.hex(key: settings.key, message: Array(text.utf8)).prefix(16))
    }

    /// Keeps the province and the last two characters: 云A12345 → 云A***45.
    public static func mask(plate: String) -> String {
        let characters = Array(plate)
        guard characters.count > 4 else { return String(repeating: "*", count: characters.count) }
        return String(characters.prefix(2)) + "***" + String(characters.suffix(2))
    }
}
