import Foundation
import RequestAuthority
import Testing

@Suite("Ed25519 through libcrypto")
struct Ed25519Tests {
    /// RFC 8032 section 7.1, test 2: a one-byte message.
    let rfcPublic: [UInt8] = hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
    let rfcMessage: [UInt8] = [0x72]
    let rfcSignature: [UInt8] = hex(
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")

    @Test func theRFC8032VectorVerifiesAndAnyChangeDoesNot() throws {
        let key = try Ed25519PublicKey(raw: rfcPublic)
        #expect(key.verify(signature: rfcSignature, of: rfcMessage))
        #expect(!key.verify(signature: rfcSignature, of: [0x73]))
        var flipped = rfcSignature
        flipped[10] ^= 1
        #expect(!key.verify(signature: flipped, of: rfcMessage))
        #expect(!key.verify(signature: Array(rfcSignature.prefix(63)), of: rfcMessage))
        #expect(!key.verify(signature: [], of: rfcMessage))
    }

    @Test func aGeneratedPairSignsVerifiesAndRoundTripsThroughPEM() throws {
        let pair = try Ed25519PrivateKey()
        let message = Array("accessgw/site/door-1/command/open\n{}".utf8)
        let signature = try pair.sign(message)
        #expect(signature.count == 64)
        let privatePEM = try pair.pem()
        let publicPEM = try pair.publicKey.pem()
        #expect(privatePEM.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(publicPEM.hasPrefix("-----BEGIN PUBLIC KEY-----"))
        let reread = try Ed25519PublicKey(pem: publicPEM)
        #expect(reread.raw == pair.publicKey.raw)
        #expect(reread.verify(signature: signature, of: message))
        let otherKey = try Ed25519PrivateKey().publicKey
        #expect(!otherKey.verify(signature: signature, of: message))
        #expect(try Ed25519PrivateKey(pem: privatePEM).sign(message) == signature)   // Ed25519 is deterministic
    }

    @Test func aKeyMadeByTheOpenSSLToolIsRead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ed25519-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let privatePath = dir.appendingPathComponent("k.pem").path, publicPath = dir.appendingPathComponent("k.pub").path
        try run("/usr/bin/openssl", ["genpkey", "-algorithm", "ed25519", "-out", privatePath])
        try run("/usr/bin/openssl", ["pkey", "-in", privatePath, "-pubout", "-out", publicPath])
        let issuer = try Issuer.load(id: "pm", publicKeyFile: publicPath, allow: [])
        let key = try Ed25519PrivateKey(pem: String(contentsOfFile: privatePath, encoding: .utf8))
        #expect(issuer.publicKey?.raw == key.publicKey.raw)
    }

    @Test func nonEd25519AndGarbageKeysAreRefusedWithAReason() throws {
        #expect(throws: CryptoError.self) { try Ed25519PublicKey(pem: "not a key") }
        #expect(throws: CryptoError.self) { try Ed25519PublicKey(raw: [1, 2, 3]) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let ecPath = dir.appendingPathComponent("ec.pem").path, ecPublic = dir.appendingPathComponent("ec.pub").path
        try run("/usr/bin/openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", ecPath])
        try run("/usr/bin/openssl", ["pkey", "-in", ecPath, "-pubout", "-out", ecPublic])
        do {
            _ = try Issuer.load(id: "pm", publicKeyFile: ecPublic, allow: [])
            Issue.record("an EC key was accepted")
        } catch {
            #expect(error.message == "issuer pm: public_key_file \(ecPublic) is not an Ed25519 key")
        }
        do {
            _ = try Issuer.load(id: "pm", publicKeyFile: "/nonexistent/pm.pub", allow: [])
            Issue.record("a missing file was accepted")
        } catch {
            #expect(error.message == "issuer pm: cannot read public_key_file /nonexistent/pm.pub")
        }
    }
}

func hex(_ text: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = text.startIndex
    while i < text.endIndex {
        let j = text.index(i, offsetBy: 2)
        out.append(UInt8(text[i..<j], radix: 16)!)
        i = j
    }
    return out
}

func run(_ tool: String, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
}

@Suite("keygen files")
struct IssuerKeyFilesTests {
    @Test func keygenWritesAPrivateKeyOnlyTheOwnerCanReadAndNeverOverwrites() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("keygen-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let paths = try IssuerKeyFiles.generate(id: "pm-kunming", directory: dir)
        let mode = try FileManager.default.attributesOfItem(atPath: paths.privateKey)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let key = try IssuerKeyFiles.privateKey(at: paths.privateKey)
        let issuer = try Issuer.load(id: "pm-kunming", publicKeyFile: paths.publicKey, allow: [])
        #expect(issuer.publicKey?.raw == key.publicKey.raw)
        #expect(throws: CryptoError.self) { try IssuerKeyFiles.generate(id: "pm-kunming", directory: dir) }
        #expect(throws: CryptoError.self) { try IssuerKeyFiles.generate(id: "../evil", directory: dir) }
    }
}
