import AccessModel
import Journal
import RequestAuthority

/// Applies `gateway.privacy`: person ids, cards and passes pseudonymised; plates masked or pseudonymised.
public struct PrivacyFilter: Sendable {
    let settings: GatewayConfiguration.Privacy

    public init(_ settings: GatewayConfiguration.Privacy) { self.settings = settings }

    static let personFields: Set<String> = ["person", "card", "pass"]

    /// Whether any setting changes events.
    public var isActive: Bool { settings.personIDs != .plain || settings.plates != .plain }

    public func apply(to fields: [(String, JSONValue)]) -> [(String, JSONValue)] {
        apply(to: fields, keepingPseudonyms: false)
    }

    /// With `keepingPseudonyms`, a value already in this key version's pseudonym form is left as it is: an event
    /// journalled under these settings passes through unchanged (replay, `replayed(payload:)`).
    func apply(to fields: [(String, JSONValue)], keepingPseudonyms: Bool) -> [(String, JSONValue)] {
        guard isActive else { return fields }
        func pseudonym(_ text: String) -> String {
            keepingPseudonyms && isPseudonym(text) ? text : self.pseudonym(text)
        }
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

    /// A journalled CloudEvent payload as the current settings allow it to leave (SPEC 4.2): an event journalled
    /// before pseudonymisation or masking was turned on gets its `data` filtered now; one journalled under these
    /// settings comes back byte for byte. Pure; a payload that is not a CloudEvent object is withheld (nil) while
    /// privacy is on, since it cannot be checked.
    public func replayed(payload: String) -> String? {
        guard isActive else { return payload }
        guard case let .object(members)? = try? JSONValue(parsing: payload, maxDepth: 32),
              let index = members.firstIndex(where: { $0.0 == "data" }), case let .object(data) = members[index].1
        else { return nil }
        let filtered = apply(to: data, keepingPseudonyms: true)
        guard JSONValue.object(filtered) != .object(data) else { return payload }
        var event = members
        event[index].1 = .object(filtered)
        return JSONValue.object(event).serialized
    }

    /// `k<version>:` and 16 lowercase hex digits, the form `pseudonym` writes with this key version.
    func isPseudonym(_ text: String) -> Bool {
        let prefix = "k\(settings.keyVersion):"
        guard text.hasPrefix(prefix) else { return false }
        let rest = text.utf8.dropFirst(prefix.utf8.count)
        return rest.count == 16 && rest.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
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
