import Atomics

/// What the rest of the gateway knows of one device while its bus polls it, shared without locks:
/// the journal writer posts commit marks here, status and metrics read the rest.
public final class DeviceLink: Sendable {
    /// The highest (boot, seq) the journal has committed for this device, as `boot << 32 | seq`; 0 for none.
    let committedMark = ManagedAtomic<UInt64>(0)
    let statusCode = ManagedAtomic<Int>(0)
    let lastPollMillis = ManagedAtomic<Int64>(0)
    let lastEventMillis = ManagedAtomic<Int64>(0)
    let errorCount = ManagedAtomic<Int>(0)

    public let id: String
    public let bus: String

    public init(id: String, bus: String) {
        self.id = id
        self.bus = bus
    }

    /// Called by the journal writer after a commit that included records of this device.
    public func committed(boot: UInt16, seq: UInt32) {
        let mark = UInt64(boot) << 32 | UInt64(seq)
        committedMark.store(mark, ordering: .releasing)
    }

    public var committed: (boot: UInt16, seq: UInt32)? {
        let mark = committedMark.load(ordering: .acquiring)
        return mark == 0 ? nil : (UInt16(truncatingIfNeeded: mark >> 32), UInt32(truncatingIfNeeded: mark))
    }

    /// `online`, `offline`, or `unknown` before the first poll settles it.
    public var status: DeviceHealthStateMachine.Status {
        switch statusCode.load(ordering: .relaxed) {
        case 1: .online
        case 2: .offline
        default: .unknown
        }
    }

    func setStatus(_ status: DeviceHealthStateMachine.Status) {
        statusCode.store(status == .online ? 1 : status == .offline ? 2 : 0, ordering: .relaxed)
    }

    /// Gateway time of the last poll, milliseconds since the epoch; 0 before the first.
    public var lastPoll: Int64 { lastPollMillis.load(ordering: .relaxed) }
    /// Gateway time the last event was read; 0 when none was.
    public var lastEvent: Int64 { lastEventMillis.load(ordering: .relaxed) }
    /// Failed requests since start.
    public var errors: Int { errorCount.load(ordering: .relaxed) }
}
