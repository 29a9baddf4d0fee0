/// Faults a simulated device injects into its Modbus replies, settable from config and at runtime.
public struct DeviceFaults: Sendable, Hashable {
    /// Extra time before every reply, in milliseconds, on top of the device's response latency.
    public var delayMilliseconds: Int = 0
    /// Probability (0–1) that a request is dropped without any reply; 1 drops everything.
    public var noReplyProbability: Double = 0
    /// Answer requests with this Modbus exception code instead of executing them.
    public var exceptionCode: UInt8? = nil
    /// Probability (0–1) that an exception is answered when `exceptionCode` is set.
    public var exceptionProbability: Double = 1
    /// Probability (0–1) that an RTU reply goes out with a corrupted CRC.
    public var corruptCRCProbability: Double = 0
    /// Close the TCP connection instead of answering every Nth request to this device.
    public var dropConnectionAfter: Int? = nil
    /// Writes to the clock (HR 12–13) answer exception 02, as on devices whose clock is read-only.
    public var readOnlyClock = false
    /// Reads touching the state block (HR 20–29) answer exception 04.
    public var failingStateBlock = false
    /// The event block reports this `window_count` whatever the window holds (header garbage).
    public var garbledWindowCount: UInt16? = nil
    /// `boot_id` reads as a different value on every read of the event block, the log unchanged.
    public var flappingBootID = false
    /// Windows leave out the oldest unread record, though the log holds it (a window gap).
    public var windowGap = false
    /// Function 23 (Read/Write Multiple Registers) answers exception 01 (illegal function), as on devices that know
    /// only the 03/06/16 of SPEC 3.
    public var refuseFunction23 = false
    /// Function 23 requests get no reply at all, as on devices that drop a function they do not know.
    public var ignoreFunction23 = false
    /// Function 23 replies carry a byte count two short of the registers read (a converter that does not know 23).
    public var garbleFunction23 = false
    /// A function 23 write of `ack_seq` lands in its registers (it reads back) but not in the log, whose window does
    /// not move on: a device whose function 23 bypasses what function 16 does to the log.
    public var function23SkipsLog = false
    /// Replies (TCP) carry this unit id instead of the one asked, as a misbehaving converter does.
    public var replyUnit: UInt8? = nil
    /// Junk bytes sent right after every reply.
    public var trailingBytes = 0
    /// TCP replies carry this many junk bytes after the PDU, counted in the MBAP length (a padding converter).
    public var paddedReplyBytes = 0
    /// Writes (functions 6 and 16) starting in the command block (HR 30–35, SPEC 3.3) get no reply and are not
    /// executed, while every read is answered: a device that answers polls but not commands.
    public var ignoreCommandWrites = false

    public init(delayMilliseconds: Int = 0, noReplyProbability: Double = 0, exceptionCode: UInt8? = nil,
                exceptionProbability: Double = 1, corruptCRCProbability: Double = 0, dropConnectionAfter: Int? = nil) {
        self.delayMilliseconds = delayMilliseconds
        self.noReplyProbability = noReplyProbability
        self.exceptionCode = exceptionCode
        self.exceptionProbability = exceptionProbability
        self.corruptCRCProbability = corruptCRCProbability
        self.dropConnectionAfter = dropConnectionAfter
    }

    /// No faults at all.
    public static let none = DeviceFaults()
}

/// What a transport does with one request addressed to a device, decided by its faults.
public enum FaultDecision: Sendable, Equatable {
    /// Execute the request and reply after `delayMilliseconds`.
    case answer(delayMilliseconds: Int, corruptCRC: Bool)
    /// Reply with this exception after `delayMilliseconds` without executing.
    case exception(UInt8, delayMilliseconds: Int)
    /// Send nothing.
    case noReply
    /// Close the TCP connection (RTU treats it as no reply).
    case dropConnection
}
