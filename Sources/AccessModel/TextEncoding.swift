#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The string encodings device registers use. GB18030 goes through the C library's iconv.
public enum TextEncoding: String, Sendable, CaseIterable {
    case ascii
    case utf8 = "utf-8"
    case gb18030

    /// Why bytes could not become text, or text could not become bytes.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var encoding: TextEncoding
        public var byteOffset: Int
        public var description: String {
            "invalid \(encoding.rawValue) byte sequence at byte \(byteOffset)"
        }
    }

    /// Decodes NUL-padded bytes: everything from the first NUL on is padding.
    public func decode(_ bytes: some Collection<UInt8>) throws(Failure) -> String {
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { (buffer) throws(Failure) -> String in try decode(buffer) }
    }

    /// `decode` for bytes in memory (a record's subject, read into the stack): nothing copied but the text.
    public func decode(_ bytes: UnsafeBufferPointer<UInt8>) throws(Failure) -> String {
        let text = UnsafeBufferPointer(rebasing: bytes[..<(bytes.firstIndex(of: 0) ?? bytes.count)])
        if let bad = text.firstIndex(where: { $0 >= 0x80 }) {
            switch self {
            case .ascii: throw Failure(encoding: self, byteOffset: bad)
            case .utf8:
                guard let s = String(validating: text, as: UTF8.self) else {
                    throw Failure(encoding: self, byteOffset: TextEncoding.firstInvalidUTF8Offset(Array(text)))
                }
                return s
            case .gb18030:
                let utf8 = try Iconv.convert(text, from: "GB18030", to: "UTF-8", encoding: self)
                return String(decoding: utf8, as: UTF8.self)
            }
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Encodes `text` and NUL-pads or truncates it to `length` bytes (never splitting a character).
    public func encode(_ text: String, length: Int) throws(Failure) -> [UInt8] {
        var bytes: [UInt8]
        switch self {
        case .ascii:
            bytes = Array(text.utf8)
            if let bad = bytes.firstIndex(where: { $0 >= 0x80 }) { throw Failure(encoding: self, byteOffset: bad) }
        case .utf8:
            bytes = []
            for ch in text where bytes.count + ch.utf8.count <= length { bytes += ch.utf8 }
        case .gb18030:
            bytes = []
            for ch in text {
                let utf8 = Array(String(ch).utf8)
                let encoded = try utf8.withUnsafeBufferPointer { (character) throws(Failure) -> [UInt8] in
                    try Iconv.convert(character, from: "UTF-8", to: "GB18030", encoding: self)
                }
                guard bytes.count + encoded.count <= length else { break }
                bytes += encoded
            }
        }
        if bytes.count > length { bytes.removeLast(bytes.count - length) }
        return bytes + [UInt8](repeating: 0, count: length - bytes.count)
    }

    private static func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int {
        var offset = 0
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case let .scalarValue(scalar): offset += UTF8.width(scalar)
            case .emptyInput: return offset
            case .error: return offset
            }
        }
    }
}

/// An iconv conversion (`iconv_open`, `iconv`), on a descriptor reused across calls: opening one sets up the
/// converter, several microseconds, which a plate reader's GB18030 subjects would otherwise pay per record.
enum Iconv {
    /// Idle descriptors by conversion. A descriptor serves one call at a time: taken out, reset and put back after.
    private static let idle = Mutex<[String: [Descriptor]]>([:])
    /// Idle descriptors kept per conversion; more are closed (as many are open as threads convert at once).
    private static let keptPerConversion = 4

    private struct Descriptor: @unchecked Sendable {
        // @unchecked: an iconv_t is used by one thread at a time, the one that took it out of `idle`.
        let cd: iconv_t
    }

    static func convert(_ input: UnsafeBufferPointer<UInt8>, from: String, to: String,
                        encoding: TextEncoding) throws(TextEncoding.Failure) -> [UInt8] {
        let conversion = from + ">" + to
        let cd: iconv_t
        if let descriptor = idle.withLock({ $0[conversion]?.popLast() }) {
            cd = descriptor.cd
        } else {
            guard let opened = iconv_open(to, from), opened != iconv_t(bitPattern: -1) else {
                throw TextEncoding.Failure(encoding: encoding, byteOffset: 0)
            }
            cd = opened
        }
        defer {
            // Back to the initial state whatever the conversion left behind (a failed one may stop mid-sequence).
            iconv(cd, nil, nil, nil, nil)
            let kept = idle.withLock { idle -> Bool in
                guard idle[conversion, default: []].count < keptPerConversion else { return false }
                idle[conversion, default: []].append(Descriptor(cd: cd))
                return true
            }
            if !kept { iconv_close(cd) }
        }
        // Converted straight from the caller's bytes into the result's own storage: one allocation.
        var failedAt: Int?
        let output = [UInt8](unsafeUninitializedCapacity: input.count * 4 + 8) { buffer, count in
            let written = buffer.withMemoryRebound(to: CChar.self) { target in
                input.withMemoryRebound(to: CChar.self) { source in
                    var inPtr = UnsafeMutablePointer(mutating: source.baseAddress)  // iconv only reads it
                    var inLeft = source.count
                    var outPtr = target.baseAddress
                    var outLeft = target.count
                    let rc = iconv(cd, &inPtr, &inLeft, &outPtr, &outLeft)
                    if rc == -1 || inLeft != 0 { failedAt = source.count - inLeft }
                    return target.count - outLeft
                }
            }
            count = written
        }
        if let failedAt { throw TextEncoding.Failure(encoding: encoding, byteOffset: failedAt) }
        return output
    }
}
