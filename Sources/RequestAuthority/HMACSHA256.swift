import CCrypto

/// HMAC-SHA256 through OpenSSL's libcrypto (`HMAC` with `EVP_sha256`), for pseudonymising person ids and plates.
public enum HMACSHA256 {
    public static func hex(key: [UInt8], message: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = key.withUnsafeBytes { keyBytes in
            message.withUnsafeBufferPointer { messageBytes in
                HMAC(EVP_sha256(), keyBytes.baseAddress, Int32(key.count), messageBytes.baseAddress, messageBytes.count,
                     &digest, &length)
            }
        }
        return digest.prefix(Int(length)).map { byte in
            let h = String(byte, radix: 16)
            return h.count == 1 ? "0" + h : h
        }.joined()
    }
}
