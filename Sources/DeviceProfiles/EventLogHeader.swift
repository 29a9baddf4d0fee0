/// The event log's header as read from the device: where its FIFO stands.
public struct EventLogHeader: Sendable, Equatable {
    public var headSeq: UInt32
    public var tailSeq: UInt32
    public var bootID: UInt16
    public var windowCount: UInt16
    public var ackSeq: UInt32
    public var unread: UInt16
    public var logFlags: UInt16

    public init(headSeq: UInt32, tailSeq: UInt32, bootID: UInt16, windowCount: UInt16, ackSeq: UInt32,
                unread: UInt16, logFlags: UInt16) {
        self.headSeq = headSeq
        self.tailSeq = tailSeq
        self.bootID = bootID
        self.windowCount = windowCount
        self.ackSeq = ackSeq
        self.unread = unread
        self.logFlags = logFlags
    }

    public var overwroteSinceAck: Bool { logFlags & 1 != 0 }
    public var nearlyFull: Bool { logFlags & 2 != 0 }
    public var clockUnsynchronised: Bool { logFlags & 4 != 0 }
}

extension EventLogLayout {
    /// Decodes the header from registers read at `address` (at least `headerCount` of them).
    public func header(from words: UnsafeBufferPointer<UInt16>, layout: WordLayout) -> EventLogHeader {
        let reading = RegisterReading(words: words, layout: layout)
        func u32(_ offset: UInt16) -> UInt32 { reading.uint32(at: Int(offset)) }
        return EventLogHeader(
            headSeq: u32(headSeq), tailSeq: u32(tailSeq), bootID: reading.word(Int(bootID)),
            windowCount: reading.word(Int(windowCount)), ackSeq: u32(ackSeq), unread: reading.word(Int(unread)),
            logFlags: reading.word(Int(logFlags)))
    }

    /// The two registers to write to `address + ackSeq` that acknowledge everything up to `seq`.
    public func ackWords(_ seq: UInt32, layout: WordLayout) -> [UInt16] {
        var words = [UInt16(seq >> 16), UInt16(seq & 0xFFFF)]
        if layout.wordOrder == .lowFirst { words.reverse() }
        return layout.byteOrder == .big ? words : words.map(\.byteSwapped)
    }
}
