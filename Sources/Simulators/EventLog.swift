/// The circular event log and its ack state machine (SPEC 3.4), pure and without I/O.
///
/// The log physically holds the last `capacity` events; `ack` marks what the gateway has stored.
/// Recording over an event that was never acknowledged is an overwrite and raises `overwritten`.
public struct EventLog: Sendable {
    public let capacity: Int
    public private(set) var head: UInt32 = 0
    public private(set) var ack: UInt32 = 0
    /// Events were overwritten before being acknowledged, since the last ack write.
    public private(set) var overwritten = false
    /// The log frees records once acknowledged (SPEC 3.4 allows both): `tail` is then `ack + 1`, `head + 1` when
    /// everything is acknowledged, instead of the oldest record still physically kept.
    public var freesAcknowledged = false
    private var slots: [LoggedEvent] = []

    public init(capacity: Int) {
        precondition(capacity >= 3, "an event log holds at least 3 events")
        self.capacity = capacity
    }

    /// Seq of the oldest event still held; 0 while the log is empty.
    public var tail: UInt32 {
        guard head > 0 else { return 0 }
        let kept = UInt32(max(1, Int64(head) - Int64(capacity) + 1))
        return freesAcknowledged ? max(kept, ack &+ 1) : kept
    }

    /// Events recorded but not acknowledged, as the `unread` register reports it.
    public var unread: UInt16 { UInt16(min(Int64(head) - Int64(ack), 65535)) }

    /// Unacknowledged events that are still held take at least 90 % of the capacity.
    public var nearlyFull: Bool {
        (Int64(head) - Int64(max(ack, tail == 0 ? 0 : tail - 1))) * 10 >= Int64(capacity) * 9
    }

    /// Stores `event` under the next seq and returns that seq.
    public mutating func append(_ event: LoggedEvent) -> UInt32 {
        head &+= 1
        var stored = event
        stored.seq = head
        if head > UInt32(capacity), head - UInt32(capacity) > ack { overwritten = true }
        let index = Int((head - 1) % UInt32(capacity))
        if index < slots.count { slots[index] = stored } else { slots.append(stored) }
        return head
    }

    /// The event with `seq`, if it is still held.
    public func event(seq: UInt32) -> LoggedEvent? {
        guard seq >= tail, seq <= head, seq > 0 else { return nil }
        return slots[Int((seq - 1) % UInt32(capacity))]
    }

    /// Up to `limit` events from the oldest unacknowledged one still held.
    public func window(limit: Int = 3) -> [LoggedEvent] {
        windowSeqs(limit: limit).compactMap { event(seq: $0) }
    }

    /// The seqs of `window(limit:)`, empty when it is.
    func windowSeqs(limit: Int = 3) -> Range<UInt32> {
        guard head > 0 else { return 0..<0 }
        let first = max(ack &+ 1, tail)
        guard first <= head else { return 0..<0 }
        return first..<(min(head, first + UInt32(limit) - 1) + 1)
    }

    /// Calls `body` with the event with `seq` in place, without copying it, if it is still held.
    func withEvent(seq: UInt32, _ body: (LoggedEvent) -> Void) {
        guard seq >= tail, seq <= head, seq > 0 else { return }
        body(slots[Int((seq - 1) % UInt32(capacity))])
    }

    /// Applies an ack write: above head is refused, below tail-1 is raised to tail-1, and the overwrite flag clears.
    public mutating func acknowledge(_ seq: UInt32) throws(ModbusException) {
        guard seq <= head else {
            throw .illegalDataValue("ack_seq \(seq) is above head_seq \(head)")
        }
        let floor = tail == 0 ? 0 : tail - 1
        ack = max(seq, floor)
        overwritten = false
    }

    /// Forgets every event, as a factory reset or firmware update does; seqs restart at 1.
    public mutating func clear() {
        head = 0
        ack = 0
        overwritten = false
        slots = []
    }
}
