import CCrypto

/// HMAC-SHA256 through OpenSSL's libcrypto (`HMAC` with `EVP_sha256`), for pseudonymising person ids and plates.
public enum HMACSHA256 {
    /// The 64 hex digits of the MAC. A libcrypto that cannot compute it stops the process: carrying on would give
    /// every identifier the same empty pseudonym, which is worse than no pseudonymisation at all.
    public static func hex(key: [UInt8], message: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let result = key.withUnsafeBytes { keyBytes in
            message.withUnsafeBufferPointer { messageBytes in
                HMAC(EVP_sha256(), keyBytes.baseAddress, Int32(key.count), messageBytes.baseAddress, messageBytes.count,
                     &digest, &length)
            }
        }
        guard result != nil, length == 32 else {
            fatalError("libcrypto's HMAC(EVP_sha256) failed (\(length) bytes): refusing to pseudonymise with a broken MAC")
        }
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(64)
        for byte in digest {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
