import CCrypto

/// A failure of libcrypto or of a key file, naming the call or the file.
public struct CryptoError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }

    init(_ message: String) { self.message = message }

    /// The failed call and OpenSSL's own reason (`ERR_get_error`), which also clears its error queue.
    static func call(_ name: String) -> CryptoError {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else { return CryptoError("\(name) failed") }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return CryptoError("\(name) failed: \(text)")
    }
}

/// Owns one `EVP_PKEY` and frees it.
final class OwnedPKey {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { EVP_PKEY_free(pointer) }

    /// Parses a PEM text with `PEM_read_bio_PUBKEY` or `PEM_read_bio_PrivateKey` and insists on Ed25519.
    static func pem(_ text: String, private isPrivate: Bool) throws(CryptoError) -> OwnedPKey {
        let bytes = Array(text.utf8)
        guard let bio = bytes.withUnsafeBytes({ BIO_new_mem_buf($0.baseAddress, Int32($0.count)) }) else {
            throw .call("BIO_new_mem_buf")
        }
        defer { BIO_free(bio) }
        // BIO_new_mem_buf does not copy: `bytes` stays alive until the end of this function.
        let key = withExtendedLifetime(bytes) {
            isPrivate ? PEM_read_bio_PrivateKey(bio, nil, nil, nil) : PEM_read_bio_PUBKEY(bio, nil, nil, nil)
        }
        guard let key else {
            ERR_clear_error()
            throw CryptoError("not a PEM \(isPrivate ? "private" : "public") key")
        }
        let owned = OwnedPKey(key)
        guard EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 else { throw CryptoError("not an Ed25519 key") }
        return owned
    }

    /// Writes the key as PEM through a memory BIO.
    func pem(private isPrivate: Bool) throws(CryptoError) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw .call("BIO_new") }
        defer { BIO_free(bio) }
        let ok = isPrivate
            ? PEM_write_bio_PrivateKey(bio, pointer, nil, nil, 0, nil, nil)
            : PEM_write_bio_PUBKEY(bio, pointer)
        guard ok == 1 else { throw .call(isPrivate ? "PEM_write_bio_PrivateKey" : "PEM_write_bio_PUBKEY") }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while true {
            let n = BIO_read(bio, &chunk, Int32(chunk.count))
            if n <= 0 { break }
            out += chunk.prefix(Int(n))
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// An Ed25519 public key: verifies signatures with `EVP_DigestVerify` (Ed25519 is one-shot, no digest).
/// `@unchecked Sendable`: the key is never mutated after construction, and each verification uses its own
/// `EVP_MD_CTX`, which OpenSSL allows concurrently on a shared `EVP_PKEY`.
public final class Ed25519PublicKey: @unchecked Sendable {
    let key: OwnedPKey

    /// The key from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as `openssl pkey -pubout` and `accessgw keygen` write it.
    public init(pem: String) throws(CryptoError) {
        key = try OwnedPKey.pem(pem, private: false)
    }

    /// The key from its 32 raw bytes (`EVP_PKEY_new_raw_public_key`).
    public init(raw: [UInt8]) throws(CryptoError) {
        guard raw.count == 32 else { throw CryptoError("an Ed25519 public key is 32 bytes, not \(raw.count)") }
        guard let pointer = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, raw, raw.count) else {
            throw .call("EVP_PKEY_new_raw_public_key")
        }
        key = OwnedPKey(pointer)
    }

    init(key: OwnedPKey) { self.key = key }

    /// The 32 raw bytes (`EVP_PKEY_get_raw_public_key`).
    public var raw: [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length = out.count
        guard EVP_PKEY_get_raw_public_key(key.pointer, &out, &length) == 1 else { return [] }
        return Array(out.prefix(length))
    }

    public func pem() throws(CryptoError) -> String { try key.pem(private: false) }

    /// True when `signature` is this key's Ed25519 signature of `message`; any failure is false.
    public func verify(signature: [UInt8], of message: [UInt8]) -> Bool {
        guard signature.count == 64, let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, nil, nil, key.pointer) == 1 else {
            ERR_clear_error()
            return false
        }
        let result = EVP_DigestVerify(context, signature, signature.count, message, message.count)
        if result != 1 { ERR_clear_error() }
        return result == 1
    }
}

/// An Ed25519 private key, for `accessgw keygen` and `accessgw send` (and tests acting as issuers).
/// `@unchecked Sendable`: immutable after construction; each signature uses its own `EVP_MD_CTX`.
public final class Ed25519PrivateKey: @unchecked Sendable {
    let key: OwnedPKey

    /// A fresh key pair from `EVP_PKEY_keygen` with `EVP_PKEY_ED25519`.
    public init() throws(CryptoError) {
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nil) else { throw .call("EVP_PKEY_CTX_new_id") }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_keygen_init(context) == 1 else { throw .call("EVP_PKEY_keygen_init") }
        var pointer: OpaquePointer?
        guard EVP_PKEY_keygen(context, &pointer) == 1, let pointer else { throw .call("EVP_PKEY_keygen") }
        key = OwnedPKey(pointer)
    }

    /// The key from a PEM `PRIVATE KEY` (PKCS #8), as `openssl genpkey -algorithm ed25519` and `keygen` write it.
    public init(pem: String) throws(CryptoError) {
        key = try OwnedPKey.pem(pem, private: true)
    }

    public var publicKey: Ed25519PublicKey { Ed25519PublicKey(key: key) }

    public func pem() throws(CryptoError) -> String { try key.pem(private: true) }

    /// The 64-byte Ed25519 signature of `message` (`EVP_DigestSign`).
    public func sign(_ message: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw .call("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestSignInit(context, nil, nil, nil, key.pointer) == 1 else { throw .call("EVP_DigestSignInit") }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = signature.count
        guard EVP_DigestSign(context, &signature, &length, message, message.count) == 1 else { throw .call("EVP_DigestSign") }
        return Array(signature.prefix(length))
    }
}
