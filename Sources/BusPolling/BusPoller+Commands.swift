import AccessModel
import ModbusTransport
#if canImport(Glibc)
import Glibc
#endif

extension BusPoller {
    /// What the poller does next: a waiting command goes before every poll and drain; otherwise the device due
    /// soonest, or a wait until it is due. Pure, so the priority is tested without a bus.
    enum Turn: Equatable {
        case command
        case poll(Int)
        case wait(millis: Int64)
        case idle
    }

    static func nextTurn(commandWaiting: Bool, soonest: (index: Int, due: Int64)?, now: Int64) -> Turn {
        if commandWaiting { return .command }
        guard let soonest else { return .idle }
        return soonest.due > now ? .wait(millis: min(soonest.due - now, 1000)) : .poll(soonest.index)
    }

    /// Queues a command for this bus and wakes the poller: it is written before the next poll begins.
    public func submit(_ job: CommandJob) {
        job.stamps.queued.store(CommandJob.Stamps.now(), ordering: .relaxed)
        commands.append(job)
        wakeBell.ring()
    }

    /// Runs `task` on this bus's thread with its connection, between two polls (after any waiting command), keeping
    /// the silence the line needs before and after it: `probe` through the daemon. `task` must not keep the line
    /// long (one device's reads); it is skipped, unrun, if the poller stops first.
    public func onLine(_ task: @escaping @Sendable (ModbusConnection) -> Void) {
        lineTasks.append(task)
        wakeBell.ring()
    }

    func runLineTask(_ task: @escaping @Sendable (ModbusConnection) -> Void) {
        try? transact { connection throws(ModbusError) in task(connection) }
    }

    /// Writes one command block with function 16. The deadline is checked immediately before every attempt;
    /// a timeout is retried with the same command id (the device ignores a repeated id) until the deadline.
    func runCommand(_ job: CommandJob) {
        job.stamps.taken.store(CommandJob.Stamps.now(), ordering: .relaxed)
        runningCommand = true
        defer { runningCommand = false }
        if let gate = job.claimCommitted {
            switch gate.wait(until: job.deadline) {
            case true?: break
            case false?: return job.completion(.failed(reason: "journal", detail: "the claim of the request id was not committed"))
            case nil: return job.completion(.expired)
            }
        }
        job.stamps.committed.store(CommandJob.Stamps.now(), ordering: .relaxed)
        var attempts = 0
        var lastError: ModbusError?
        while true {
            guard Timestamp.now < job.deadline, !stage.isStopping else {
                if let lastError {
                    return job.completion(.failed(reason: "no_reply", detail: "\(lastError)"))
                }
                return job.completion(.expired)
            }
            attempts += 1
            do {
                try transact { c throws(ModbusError) in
                    if attempts == 1 { job.stamps.sent.store(CommandJob.Stamps.now(), ordering: .relaxed) }
                    try c.writeRegisters(unit: job.unit, address: job.address, values: job.words)
                }
                return job.completion(.written(attempts: attempts))
            } catch {
                if case .exception = error.code {
                    return job.completion(.failed(reason: "device_exception", detail: "\(error)"))
                }
                lastError = error
                logger.warning("command write failed, retrying with the same command id until its deadline: \(error)",
                               metadata: ["device": "\(job.device)"])
                if error.code != .timeout { usleep(50_000) }   // a refused connection fails at once: do not spin
            }
        }
    }

    /// Writes every waiting command now, between two transactions of a poll: a turn of a backlogged device is
    /// several transactions (ack, header, window, state block, clock), and a command waits for none but the one
    /// on the line. Called by `transact` before each poll transaction, never from within a command.
    func runWaitingCommands() {
        guard !runningCommand else { return }
        while let job = commands.next() { runCommand(job) }
    }
}
