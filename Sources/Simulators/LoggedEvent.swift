/// One event held in a simulated device's log, laid out as the 32-register record of SPEC 3.4.
public struct LoggedEvent: Sendable, Hashable {
    public var seq: UInt32
    public var time: UInt32
    public var millis: UInt16
    public var code: UInt16
    public var point: Int16
    public var direction: UInt8
    /// Record flags (high byte of offset 7); bit0 = clock not synchronised.
    public var flags: UInt8
    public var value: UInt32
    public var extra: UInt32
    /// The subject already encoded and NUL-padded to 40 bytes.
    public var subject: [UInt8]

    public init(seq: UInt32, time: UInt32, millis: UInt16, code: UInt16, point: Int16, direction: UInt8, flags: UInt8,
                value: UInt32, extra: UInt32, subject: [UInt8]) {
        self.seq = seq
        self.time = time
        self.millis = millis
        self.code = code
        self.point = point
        self.direction = direction
        self.flags = flags
        self.value = value
        self.extra = extra
        self.subject = subject
    }

    /// Number of registers one record takes.
    public static let registerCount = 32

    /// The record's 32 registers, big-endian words, 32-bit values high word first.
    public var registers: [UInt16] {
        [UInt16](unsafeUninitializedCapacity: Self.registerCount) { words, initialized in
            writeRegisters(to: words)
            initialized = Self.registerCount
        }
    }

    /// Writes the record's 32 registers to the start of `words`.
    func writeRegisters(to words: UnsafeMutableBufferPointer<UInt16>) {
        words[0] = UInt16(seq >> 16)
        words[1] = UInt16(truncatingIfNeeded: seq)
        words[2] = UInt16(time >> 16)
        words[3] = UInt16(truncatingIfNeeded: time)
        words[4] = millis
        words[5] = code
        words[6] = UInt16(bitPattern: point)
        words[7] = UInt16(flags) << 8 | UInt16(direction)
        words[8] = UInt16(value >> 16)
        words[9] = UInt16(truncatingIfNeeded: value)
        words[10] = UInt16(extra >> 16)
        words[11] = UInt16(truncatingIfNeeded: extra)
        for i in 0..<20 {
            let high = i * 2 < subject.count ? subject[i * 2] : 0
            let low = i * 2 + 1 < subject.count ? subject[i * 2 + 1] : 0
            words[12 + i] = UInt16(high) << 8 | UInt16(low)
        }
    }
}
