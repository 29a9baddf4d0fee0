/// The decisions of one map-2 write command (SPEC 3.5), pure so that never-twice and never-left-on are tested
/// without a bus: after each transaction's outcome, what the next transaction is.
///
/// A write has no device command id, so a write that got no reply is never repeated blindly: the coil or register
/// is read back first, and the write is repeated only when the read shows it was not applied. A pulse's restoring
/// write always happens once the value may have been applied — also past the deadline, and also when the read-back
/// could not tell — since writing the resting value twice is harmless and leaving a relay on is not.
struct WritePlan: Equatable {
    enum Phase: Equatable {
        /// Writing the command's value (the deadline is checked before each attempt).
        case setting
        /// Writing the resting value back after the pulse (never skipped).
        case restoring
        case finished
    }

    /// What one transaction gave.
    enum Result: Equatable {
        /// The device answered the write.
        case written
        /// The device answered with a Modbus exception: the write was not applied.
        case exception(String)
        /// No reply (timeout, broken connection): it may or may not have been applied.
        case noReply(String)
        /// The read-back's value, nil when the read got no reply either.
        case readBack(UInt16?)
    }

    enum Step: Equatable {
        /// Write `value` (the command's, or the resting one).
        case write(UInt16)
        /// Read the coil or register back before any repeat.
        case readBack
        /// The value is applied: wait this long, then write the resting value.
        case pulseThenRestore(millis: Int64)
        /// The command's outcome is known; with a pulse, the restoring write still follows (`restorePending`).
        case done(CommandJob.Outcome)
    }

    let value: UInt16
    let rest: UInt16
    /// Nil for a plain write.
    let pulseMillis: Int64?
    private(set) var phase = Phase.setting
    private(set) var attempts = 0
    /// The outcome to report once the pulse is over; known when the value was applied (or could not be told).
    private(set) var outcome: CommandJob.Outcome?
    private var lastProblem = ""

    init(value: UInt16, rest: UInt16 = 0, pulseMillis: Int64? = nil) {
        self.value = value
        self.rest = rest
        self.pulseMillis = pulseMillis
    }

    /// The first transaction; nil when the deadline passed before it (nothing was written: `expired`).
    mutating func start(deadlinePassed: Bool) -> Step? {
        if deadlinePassed {
            phase = .finished
            return nil
        }
        attempts = 1
        return .write(value)
    }

    /// The next transaction after `result`. `deadlinePassed` matters only for repeating the command's own write.
    mutating func next(after result: Result, deadlinePassed: Bool) -> Step {
        switch phase {
        case .setting:
            switch result {
            case .written, .readBack(value?) where value == self.value:
                return applied()
            case .exception(let detail):
                phase = .finished
                return .done(.failed(reason: "device_exception", detail: detail))
            case .noReply(let detail):
                lastProblem = detail
                return .readBack
            case .readBack(nil):
                // Cannot tell whether it was applied: fail, but a pulse is restored all the same (never left on).
                let failed = CommandJob.Outcome.failed(reason: "no_reply", detail: lastProblem)
                guard pulseMillis != nil else {
                    phase = .finished
                    return .done(failed)
                }
                outcome = failed
                phase = .restoring
                return .write(rest)
            case .readBack:
                // Shown not applied: the only case a write is repeated, and only before the deadline.
                guard !deadlinePassed else {
                    phase = .finished
                    return .done(.failed(reason: "no_reply", detail: lastProblem))
                }
                attempts += 1
                return .write(value)
            }
        case .restoring:
            switch result {
            case .written, .readBack(rest?) where rest == self.rest:
                phase = .finished
                return .done(outcome ?? .written(attempts: attempts))
            case .noReply(let detail):
                lastProblem = detail
                return .readBack
            case .exception, .readBack:
                // Not shown restored: write the resting value again (harmless twice), whatever the deadline.
                return .write(rest)
            }
        case .finished:
            return .done(outcome ?? .expired)
        }
    }

    private mutating func applied() -> Step {
        guard let pulseMillis else {
            phase = .finished
            return .done(.written(attempts: attempts))
        }
        outcome = .written(attempts: attempts)
        phase = .restoring
        return .pulseThenRestore(millis: pulseMillis)
    }
}
