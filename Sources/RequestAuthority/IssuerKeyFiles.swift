import Foundation

/// The key pair files `accessgw keygen ID` writes: `ID.key` (PKCS #8 PEM, mode 0600, for `accessgw send`) and
/// `ID.pub` (PEM, for the gateway's `public_key_file`).
public enum IssuerKeyFiles {
    /// Writes a fresh pair into `directory`; never overwrites an existing key (an issuer's key is replaced on
    /// purpose, by deleting the old one first). Returns the two paths.
    public static func generate(id: String, directory: String) throws(CryptoError) -> (privateKey: String, publicKey: String) {
        guard RequestEnvelope.isRequestID(id) else {
            throw CryptoError("issuer id \"\(id)\" must be 1-64 characters of A-Z a-z 0-9 . _ : -")
        }
        let key = try Ed25519PrivateKey()
        let base = directory.hasSuffix("/") ? directory : directory + "/"
        let privatePath = base + id + ".key", publicPath = base + id + ".pub"
        try write(try key.pem(), to: privatePath, mode: 0o600)
        do {
            try write(try key.publicKey.pem(), to: publicPath, mode: 0o644)
        } catch {
            unlink(privatePath)
            throw error
        }
        return (privatePath, publicPath)
    }

    /// Creates the file exclusively with its final mode, so the private key is never readable by others.
    static func write(_ text: String, to path: String, mode: mode_t) throws(CryptoError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw CryptoError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        fchmod(fd, mode)   // the umask may have narrowed it; never widened beyond `mode`
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            unlink(path)
            throw CryptoError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Reads an issuer's private key file for signing.
    public static func privateKey(at path: String) throws(CryptoError) -> Ed25519PrivateKey {
        guard let data = FileManager.default.contents(atPath: path) else { throw CryptoError("cannot read key file \(path)") }
        do { return try Ed25519PrivateKey(pem: String(decoding: data, as: UTF8.self)) } catch {
            throw CryptoError("key file \(path) is \(error.message)")
        }
    }
}
