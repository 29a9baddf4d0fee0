import AccessModel
import ModbusTransport

extension BusPoller {
    /// What the poller does next. Pure, so the priority is tested without a bus.
    enum Turn: Equatable {
        /// A command's first write: the next transaction on the line, ahead of every poll.
        case command
        /// One transaction of a command's retry or of a probe: between two polls, never two in a row while a poll
        /// is due (SPEC 4.1 rule 9), so a device that does not answer costs its neighbours one timeout per turn.
        case between
        case poll(Int)
        case wait(millis: Int64)
        case idle
    }

    /// `betweenDue`: when the earliest waiting retry or probe transaction may go (nil when none waits);
    /// `pollSinceBetween`: whether a poll ran since the last such transaction.
    static func nextTurn(commandWaiting: Bool, betweenDue: Int64? = nil, pollSinceBetween: Bool = true,
                         soonest: (index: Int, due: Int64)?, now: Int64) -> Turn {
        if commandWaiting { return .command }
        let pollDue = soonest.map { $0.due <= now } ?? false
        if let betweenDue, betweenDue <= now, pollSinceBetween || !pollDue { return .between }
        if let soonest, pollDue { return .poll(soonest.index) }
        guard let wake = [soonest?.due, betweenDue].compactMap({ $0 }).min() else { return .idle }
        return .wait(millis: min(max(wake - now, 1), 1000))
    }

    /// A command whose write went unanswered, waiting for its next attempt between two polls.
    struct CommandRetry {
        var job: CommandJob
        var attempts: Int
        /// Nil while the claim's commit was still awaited.
        var lastError: ModbusError?
        /// Monotonic milliseconds before which it is not tried again (a refused connection fails at once).
        var notBefore: Int64
    }

    /// Queues a command for this bus and wakes the poller: it is written before the next poll begins.
    public func submit(_ job: CommandJob) {
        job.stamps.queued.store(CommandJob.Stamps.now(), ordering: .relaxed)
        commands.append(job)
        wakeBell.ring()
    }

    /// Runs `task` on this bus's thread with its connection, between two polls (never two tasks or retries in a
    /// row while a poll is due), keeping the silence the line needs before and after it: `probe` through the
    /// daemon. `task` must make at most one transaction; it is skipped, unrun, if the poller stops first.
    public func onLine(_ task: @escaping @Sendable (ModbusConnection) -> Void) {
        lineTasks.append(task)
        wakeBell.ring()
    }

    func runLineTask(_ task: @escaping @Sendable (ModbusConnection) -> Void) {
        try? transact { connection throws(ModbusError) in task(connection) }
    }

    /// When the earliest retry or probe transaction may go, nil when none waits.
    func betweenDue(now: Int64) -> Int64? {
        if !lineTasks.isEmpty { return now }
        return retries.map(\.notBefore).min()
    }

    /// One transaction between two polls: a due retry or a probe's read, taking turns when both wait, so that
    /// neither a command retried until its deadline nor a loop of probes keeps the other off the line.
    func runBetween(now: Int64) {
        let due = retries.indices.min(by: { retries[$0].notBefore < retries[$1].notBefore }).flatMap { retries[$0].notBefore <= now ? $0 : nil }
        if let index = due, !(probeTurnNext && !lineTasks.isEmpty) {
            let retry = retries.remove(at: index)
            probeTurnNext = true
            attempt(retry.job, attempts: retry.attempts, lastError: retry.lastError)
        } else if let task = lineTasks.next() {
            probeTurnNext = false
            runLineTask(task)
        }
    }

    /// One attempt at writing a command block with function 16: at most one transaction. The deadline (monotonic)
    /// is checked immediately before it; a timeout goes back as a retry with the same command id (the device ignores
    /// a repeated id), tried again between polls until the deadline.
    func attempt(_ job: CommandJob, attempts: Int, lastError: ModbusError?) {
        if job.stamps.taken.load(ordering: .relaxed) == 0 {
            job.stamps.taken.store(CommandJob.Stamps.now(), ordering: .relaxed)
        }
        runningCommand = true
        defer { runningCommand = false }
        if let gate = job.claimCommitted {
            // The claim's commit (an fsync) normally ends long before the line is free; waited for at most one
            // transaction's time, after which the job waits between polls like a retry.
            let bound = min(job.deadline, .now + .milliseconds(bus.timeoutMillis))
            switch gate.wait(until: bound) {
            case true?: break
            case false?: return job.completion(.failed(reason: "journal", detail: "the claim of the request id was not committed"))
            case nil:
                guard ContinuousClock.now < job.deadline else { return job.completion(.expired) }
                retries.append(CommandRetry(job: job, attempts: attempts, lastError: lastError, notBefore: monotonicMillis()))
                return
            }
        }
        if job.stamps.committed.load(ordering: .relaxed) == 0 {
            job.stamps.committed.store(CommandJob.Stamps.now(), ordering: .relaxed)
        }
        guard ContinuousClock.now < job.deadline, !stage.isStopping else {
            if let lastError { return job.completion(.failed(reason: "no_reply", detail: "\(lastError)")) }
            return job.completion(.expired)
        }
        do {
            try transact { c throws(ModbusError) in
                if attempts == 0 { job.stamps.sent.store(CommandJob.Stamps.now(), ordering: .relaxed) }
                try c.writeRegisters(unit: job.unit, address: job.address, values: job.words)
            }
            job.completion(.written(attempts: attempts + 1))
        } catch {
            if case .exception = error.code {
                return job.completion(.failed(reason: "device_exception", detail: "\(error)"))
            }
            if attempts == 0 {
                logger.warning("command write failed, retrying with the same command id between polls until its deadline: \(error)",
                               metadata: ["device": "\(job.device)"])
            }
            // A refused connection fails at once: do not spin.
            let pause: Int64 = error.code == .timeout ? 0 : 50
            retries.append(CommandRetry(job: job, attempts: attempts + 1, lastError: error, notBefore: monotonicMillis() + pause))
        }
    }

    /// Writes every waiting command's first attempt now, between two transactions of a poll: a turn of a
    /// backlogged device is several transactions (ack, header, window, state block, clock), and a command waits for
    /// none but the one on the line. Called by `transact` before each poll transaction, never from within a command.
    func runWaitingCommands() {
        guard !runningCommand else { return }
        while let job = commands.next() { attempt(job, attempts: 0, lastError: nil) }
    }

    /// Answers every command still waiting when the poller stops: none is written any more.
    func endWaitingCommands() {
        for retry in retries {
            retry.job.completion(retry.lastError.map { .failed(reason: "no_reply", detail: "\($0)") } ?? .expired)
        }
        retries.removeAll()
        while let job = commands.next() { job.completion(.expired) }
    }
}
