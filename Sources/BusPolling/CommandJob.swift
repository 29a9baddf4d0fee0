import AccessModel
import Atomics
import Dispatch
import ModbusTransport
import Synchronization

/// One command-block write (SPEC 3.3) waiting for its bus: the next transaction on the line, ahead of every poll.
public struct CommandJob: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// The device answered the write; `attempts` > 1 when a timed-out write was repeated with the same id.
        case written(attempts: Int)
        /// The deadline passed before a write could be sent (checked again just before each attempt).
        case expired
        /// The device answered with a Modbus exception (`device_exception`), or every attempt before the deadline
        /// went unanswered (`no_reply`: it may or may not have executed; a later retry would be ignored by id).
        case failed(reason: String, detail: String)
    }

    public var device: String
    public var unit: UInt8
    /// The command block's address and its four words: code, argument, command id high, low.
    public var address: UInt16
    public var words: [UInt16]
    /// On the monotonic clock (SPEC 4.1 rule 8): a step of the wall clock neither shortens nor lengthens it.
    public var deadline: ContinuousClock.Instant
    /// Runs on the poller thread once the job is done: it must hand the outcome on, not block the bus.
    public var completion: @Sendable (Outcome) -> Void
    /// When the job reached its bus and when its write went out: where a command's latency goes (SPEC 8).
    public let stamps: Stamps
    /// Opened when the claim of the request id is committed: the job may reach its bus while the claim's commit
    /// (an fsync) is still under way, so that the commit overlaps the wait for the transaction on the line; the
    /// write waits for it (SPEC 4.1 rule 7: a restart must not forget an id whose command was written).
    public let claimCommitted: CommitGate?

    /// Monotonic instants (nanoseconds, `DispatchTime`'s clock) of a job's way over its bus; 0 until reached.
    public final class Stamps: Sendable {
        /// `submit` queued it.
        public let queued = ManagedAtomic<UInt64>(0)
        /// The poller took it, between two transactions.
        public let taken = ManagedAtomic<UInt64>(0)
        /// Its claim was committed (at once when it already was when the poller took it).
        public let committed = ManagedAtomic<UInt64>(0)
        /// The first write attempt started, after the line's silence.
        public let sent = ManagedAtomic<UInt64>(0)

        public init() {}

        public static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
    }

    public init(device: String, unit: UInt8, address: UInt16, code: UInt16, argument: UInt16, commandID: UInt32,
                deadline: ContinuousClock.Instant, stamps: Stamps = Stamps(), claimCommitted: CommitGate? = nil,
                completion: @escaping @Sendable (Outcome) -> Void) {
        self.stamps = stamps
        self.claimCommitted = claimCommitted
        self.device = device
        self.unit = unit
        self.address = address
        words = [code, argument, UInt16(commandID >> 16), UInt16(truncatingIfNeeded: commandID)]
        self.deadline = deadline
        self.completion = completion
    }
}

/// Opened once, by the thread that commits a command's claim: committed or not.
public final class CommitGate: Sendable {
    private let state = Mutex<Bool?>(nil)
    private let opened = DispatchSemaphore(value: 0)

    public init() {}

    public func open(committed: Bool) {
        state.withLock { $0 = committed }
        opened.signal()
    }

    /// Whether the claim was committed; nil when `deadline` came first. For one waiter.
    func wait(until deadline: ContinuousClock.Instant) -> Bool? {
        if let known = state.withLock({ $0 }) { return known }
        let left = max(.zero, deadline - .now)
        let millis = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000
        _ = opened.wait(timeout: .now() + .milliseconds(Int(millis)))
        return state.withLock { $0 }
    }
}

/// The commands waiting for one bus, in arrival order; filled by the intake, emptied by the bus's poller thread.
final class CommandQueue: Sendable {
    private let jobs = Mutex<[CommandJob]>([])

    func append(_ job: CommandJob) { jobs.withLock { $0.append(job) } }

    func next() -> CommandJob? {
        jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
    }

    var isEmpty: Bool { jobs.withLock { $0.isEmpty } }
}

/// Work on a bus's own line asked for from outside the poller (a probe through the daemon's control socket): run by
/// the poller thread between two polls, like a command, so no second master ever talks on the line.
final class LineTaskQueue: Sendable {
    typealias Task = @Sendable (ModbusConnection) -> Void
    private let tasks = Mutex<[Task]>([])

    func append(_ task: @escaping Task) { tasks.withLock { $0.append(task) } }

    func next() -> Task? {
        tasks.withLock { $0.isEmpty ? nil : $0.removeFirst() }
    }

    var isEmpty: Bool { tasks.withLock { $0.isEmpty } }
}
