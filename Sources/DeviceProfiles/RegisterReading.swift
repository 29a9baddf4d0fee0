import AccessModel

/// Reads typed values out of registers as a profile lays them out.
public struct RegisterReading {
    public let words: UnsafeBufferPointer<UInt16>
    public let layout: WordLayout

    public init(words: UnsafeBufferPointer<UInt16>, layout: WordLayout) {
        self.words = words
        self.layout = layout
    }

    /// The register at `offset` with its bytes in big-endian order.
    @inline(__always)
    func word(_ offset: Int) -> UInt16 {
        let w = offset < words.count ? words[offset] : 0
        return layout.byteOrder == .big ? w : w.byteSwapped
    }

    /// The 32-bit value in the two registers at `offset`, in the layout's word order.
    public func uint32(at offset: Int) -> UInt32 {
        let (hi, lo) = layout.wordOrder == .highFirst ? (word(offset), word(offset + 1)) : (word(offset + 1), word(offset))
        return UInt32(hi) << 16 | UInt32(lo)
    }

    /// The field as an integer (strings read as 0). Registers past the end read as 0.
    public func integer(_ field: FieldLayout, base: Int = 0) -> Int64 {
        integer(Placement(field), base: base)
    }

    /// Where a field's value is in the registers: its layout without the name and presentation, so a decoder
    /// keeps it per record field and copies it per record without retaining anything.
    public struct Placement: Sendable {
        var offset: UInt16
        var type: FieldLayout.ValueType
        var length: Int
        var mask: UInt32?
        var shift: Int

        public init(_ field: FieldLayout) {
            offset = field.offset
            type = field.type
            length = field.length
            mask = field.mask
            shift = field.shift
        }
    }

    /// `integer(_:base:)` of the field at `placement`.
    public func integer(_ placement: Placement, base: Int = 0) -> Int64 {
        let at = base + Int(placement.offset)
        var value: Int64
        switch placement.type {
        case .u16, .bool: value = Int64(word(at))
        case .i16: value = Int64(Int16(bitPattern: word(at)))
        case .u32, .i32:
            let u = uint32(at: at)
            value = placement.type == .u32 ? Int64(u) : Int64(Int32(bitPattern: u))
        case .string: return 0
        }
        if placement.shift > 0 { value >>= Int64(placement.shift) }
        if let mask = placement.mask { value &= Int64(mask) }
        return value
    }

    /// The field's bytes, first byte from the high half of each register (after byte-order correction).
    public func bytes(_ field: FieldLayout, base: Int = 0) -> [UInt8] {
        Array(unsafeUninitializedCapacity: field.length) { buffer, count in
            copyBytes(field, base: base, into: buffer)
            count = field.length
        }
    }

    /// Writes the field's `field.length` bytes (see `bytes`) to the start of `buffer`, which must hold them.
    public func copyBytes(_ field: FieldLayout, base: Int = 0, into buffer: UnsafeMutableBufferPointer<UInt8>) {
        copyBytes(Placement(field), base: base, into: buffer)
    }

    /// `copyBytes(_:base:into:)` of the field at `placement`.
    public func copyBytes(_ placement: Placement, base: Int = 0, into buffer: UnsafeMutableBufferPointer<UInt8>) {
        precondition(buffer.count >= placement.length, "buffer shorter than the field")
        let at = base + Int(placement.offset)
        for i in 0..<placement.length {
            let w = word(at + i / 2)
            buffer[i] = i % 2 == 0 ? UInt8(w >> 8) : UInt8(w & 0xFF)
        }
    }

    /// The field as text in its encoding; invalid bytes throw with the byte offset.
    public func text(_ field: FieldLayout, base: Int = 0) throws(TextEncoding.Failure) -> String {
        try field.encoding.decode(bytes(field, base: base))
    }

    /// The field presented for people and JSON: enum words, flag names, versions, times, scaled numbers.
    public func presented(_ field: FieldLayout, base: Int = 0) -> JSONValue {
        if field.type == .string {
            do { return .string(try text(field, base: base)) } catch {
                return .string(String(decoding: bytes(field, base: base).prefix { $0 != 0 }, as: UTF8.self))
            }
        }
        let n = integer(field, base: base)
        switch field.presentation {
        case .number: return field.type == .bool ? .bool(n != 0) : .int(n)
        case let .scaled(factor): return .double(Double(n) * factor)
        case let .words(table): return .string(table[n] ?? "unknown_\(n)")
        case let .flags(bits): return .array(bits.keys.sorted().filter { n & (1 << Int64($0)) != 0 }.map { .string(bits[$0]!) })
        case .version: return .string("\(n >> 16).\(n & 0xFFFF)")
        case .unixTime: return .string(Timestamp(millisecondsSinceEpoch: n * 1000).rfc3339)
        }
    }

    /// Every field of a block, presented, in profile order.
    public func presented(_ block: RegisterBlock) -> [(String, JSONValue)] {
        block.fields.map { ($0.name, presented($0)) }
    }
}
