import AccessModel
import Foundation

/// A party allowed to send requests: its Ed25519 public key and what it may do.
public struct Issuer: Sendable {
    public var id: String
    /// Nil only for the `unsigned` pseudo-issuer of `require_signature: false`.
    public var publicKey: Ed25519PublicKey?
    public var allow: [AllowRule]

    public init(id: String, publicKey: Ed25519PublicKey?, allow: [AllowRule]) {
        self.id = id
        self.publicKey = publicKey
        self.allow = allow
    }

    /// Reads the issuer's PEM public key from `publicKeyFile`; the error names the issuer and the file.
    public static func load(id: String, publicKeyFile: String, allow: [AllowRule]) throws(CryptoError) -> Issuer {
        guard let data = FileManager.default.contents(atPath: publicKeyFile) else {
            throw CryptoError("issuer \(id): cannot read public_key_file \(publicKeyFile)")
        }
        do {
            let key = try Ed25519PublicKey(pem: String(decoding: data, as: UTF8.self))
            return Issuer(id: id, publicKey: key, allow: allow)
        } catch {
            throw CryptoError("issuer \(id): public_key_file \(publicKeyFile) is \(error.message)")
        }
    }

    /// True when one of the rules covers `device` and `action` (a command name, or `replay`).
    public func permits(device: String, action: String) -> Bool {
        allow.contains { $0.permits(device: device, action: action) }
    }
}

/// One `allow` entry: these device globs × these command names. The action `replay` (SPEC 4.2) is a
/// permission like a command name; its devices are the devices whose history may be replayed.
public struct AllowRule: Sendable, Hashable {
    public var devices: [NamePattern]
    public var commands: Set<String>

    public init(devices: [NamePattern], commands: Set<String>) {
        self.devices = devices
        self.commands = commands
    }

    public func permits(device: String, action: String) -> Bool {
        commands.contains(action) && devices.contains { $0.matches(device) }
    }
}
