/// A JSON value whose objects keep their key order, so payloads read the way the SPEC prints them.
public enum JSONValue: Sendable, Equatable {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case array([JSONValue])
    case object([(String, JSONValue)])
    case null

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case let (.string(a), .string(b)): a == b
        case let (.int(a), .int(b)): a == b
        case let (.double(a), .double(b)): a == b
        case let (.bool(a), .bool(b)): a == b
        case let (.array(a), .array(b)): a == b
        case let (.object(a), .object(b)): a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.null, .null): true
        default: false
        }
    }

    /// The value of `key` in an object, or nil.
    public subscript(key: String) -> JSONValue? {
        guard case let .object(members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    /// Compact JSON text.
    public var serialized: String {
        // Built as UTF-8 bytes: appending to an Array is several times cheaper than to a String, and a CloudEvent
        // is about 70 appends.
        var out: [UInt8] = []
        out.reserveCapacity(512)
        write(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    public func write(to out: inout String) {
        out += serialized
    }

    /// Appends the compact JSON text as UTF-8.
    public func write(to out: inout [UInt8]) {
        write(into: &out)
    }

    /// Appends the compact JSON text as UTF-8 to any byte sink (an Array, or `JSONBuffer`'s fixed memory).
    func write<Sink: JSONByteSink>(into out: inout Sink) {
        switch self {
        case let .string(s): out.appendJSONString(s)
        case let .int(i): out.appendDecimal(i)
        case let .double(d):
            if d.isFinite {
                if d == d.rounded() && abs(d) < 1e15 { out.appendDecimal(Int64(d)) } else { out.appendUTF8(String(d)) }
            } else {
                out.appendASCII("null")
            }
        case let .bool(b): out.appendASCII(b ? "true" : "false")
        case .null: out.appendASCII("null")
        case let .array(items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let .object(members):
            out.append(UInt8(ascii: "{"))
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out.appendJSONString(key)
                out.append(UInt8(ascii: ":"))
                value.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func writeString(_ s: String, to out: inout [UInt8]) {
        out.appendJSONString(s)
    }
}

/// Where JSON text goes, byte by byte: a growing `[UInt8]`, or `JSONBuffer` over memory the caller owns.
protocol JSONByteSink {
    mutating func append(_ byte: UInt8)
    mutating func append(contentsOf bytes: UnsafeBufferPointer<UInt8>)
}

extension Array: JSONByteSink where Element == UInt8 {}

extension JSONByteSink {
    /// ASCII text with nothing to escape (keys and punctuation known at compile time).
    @inline(__always)
    mutating func appendASCII(_ text: StaticString) {
        text.withUTF8Buffer { append(contentsOf: $0) }
    }

    /// The UTF-8 of `text`, unescaped: for text that cannot hold a quote, a backslash or a control character.
    @inline(__always)
    mutating func appendUTF8(_ text: String) {
        let copied: Void? = text.utf8.withContiguousStorageIfAvailable { append(contentsOf: $0) }
        if copied == nil { for byte in text.utf8 { append(byte) } }
    }

    /// `value` in decimal, as `String(value)` spells it.
    mutating func appendDecimal(_ value: Int64) {
        if value < 0 { append(UInt8(ascii: "-")) }
        appendDecimal(value.magnitude)
    }

    mutating func appendDecimal(_ value: UInt64) {
        if value < 10 { return append(UInt8(ascii: "0") + UInt8(value)) }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var rest = value, start = 20
            while rest > 0 {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
            append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }

    /// The bytes of `text` inside a JSON string, escaped (no surrounding quotes).
    mutating func appendJSONEscaped(_ text: String) {
        // The usual case, no escape needed: one scan and one copy of the string's own buffer.
        let copied = text.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
            guard !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else { return false }
            append(contentsOf: bytes)
            return true
        }
        if copied == true { return }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): appendASCII(#"\""#)
            case UInt8(ascii: "\\"): appendASCII(#"\\"#)
            case UInt8(ascii: "\n"): appendASCII(#"\n"#)
            case UInt8(ascii: "\r"): appendASCII(#"\r"#)
            case UInt8(ascii: "\t"): appendASCII(#"\t"#)
            case ..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                appendASCII("\\u00")
                append(hex[Int(byte >> 4)])
                append(hex[Int(byte & 0xF)])
            default: append(byte)
            }
        }
    }

    /// `text` as a JSON string, quoted and escaped.
    mutating func appendJSONString(_ text: String) {
        append(UInt8(ascii: "\""))
        appendJSONEscaped(text)
        append(UInt8(ascii: "\""))
    }
}

/// JSON text written into memory the caller provides. What does not fit is counted but not written, so after one
/// pass `count` is the size needed and the caller can write again into memory that large; until then the bytes are
/// incomplete and must not be used.
struct JSONBuffer: JSONByteSink {
    let memory: UnsafeMutableBufferPointer<UInt8>
    private(set) var count = 0

    init(_ memory: UnsafeMutableBufferPointer<UInt8>) { self.memory = memory }

    /// Whether everything written fitted.
    var fits: Bool { count <= memory.count }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        if count < memory.count { memory[count] = byte }
        count += 1
    }

    @inline(__always)
    mutating func append(contentsOf bytes: UnsafeBufferPointer<UInt8>) {
        if bytes.count <= memory.count - count, let from = bytes.baseAddress {
            (memory.baseAddress! + count).update(from: from, count: bytes.count)
        }
        count += bytes.count
    }

    /// The text `body` writes, built in a buffer on the stack, or when it does not fit there, written again
    /// straight into a string of the size the first pass counted. `body` must write the same bytes each time.
    static func text(_ body: (inout JSONBuffer) -> Void) -> String {
        var needed = 0
        // 1 KiB is always safe on the stack and holds a usual CloudEvent (about 700 bytes).
        let text: String? = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { memory in
            var out = JSONBuffer(memory)
            body(&out)
            guard out.fits else {
                needed = out.count
                return nil
            }
            return String(decoding: UnsafeBufferPointer(rebasing: memory[..<out.count]), as: UTF8.self)
        }
        if let text { return text }
        return String(unsafeUninitializedCapacity: needed) { memory in
            var out = JSONBuffer(memory)
            body(&out)
            precondition(out.count == needed, "JSON text changed between two passes")
            return out.count
        }
    }
}
