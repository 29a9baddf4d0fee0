import AccessModel
import DeviceProfiles
import EventRing
import Logging
import ModbusTransport
#if canImport(Glibc)
import Glibc
#endif

extension BusPoller {
    /// When the device's next turn is due, as its log step sees it.
    enum LogTurn: Equatable {
        /// At the poll interval.
        case regular
        /// After this many milliseconds (the device refused an ack).
        case holdOff(Int64)
    }

    /// One turn of one device. Each step fails on its own, the event log first: a state block or clock the
    /// device refuses never keeps its events from being read, and while the log answers the device is online.
    /// A device that does not answer at all costs one timeout: the other steps wait for its next turn.
    func serve(_ index: Int, now: Int64) {
        var device = devices[index]
        defer { devices[index] = device }
        device.link.lastPollMillis.store(Timestamp.now.millisecondsSinceEpoch, ordering: .relaxed)
        let config = device.config
        var turn = LogTurn.regular
        var turnFailed = false
        var silent = false
        if device.fifo != nil {
            do { turn = try pollLog(&device) } catch {
                failed(&device, error)
                turnFailed = true
                silent = !Self.isAnswer(error)
            }
        }
        if let map = config.profile.map {
            // A map-2 device has no log: its blocks decide whether it answers.
            do { try pollMap(&device, map: map) } catch {
                failed(&device, error)
                turnFailed = true
                silent = !Self.isAnswer(error)
            }
        }
        // On RTU a device with a log reads its state block in the line's next state slot, so header rounds carry
        // their even share of state reads (StateSchedule); a device without a log polls its state as its turn.
        let paced = device.fifo != nil ? statePaceMillis : nil
        if !silent, let block = config.profile.state, now >= device.nextStatePoll,
           paced == nil || StateSchedule.slotOpen(now: now, nextSlot: nextStateSlot) {
            device.nextStatePoll = StateSchedule.next(after: device.nextStatePoll, now: now, every: config.statePollMillis)
            if let paced { nextStateSlot = StateSchedule.nextSlot(now: now, pace: paced) }
            do {
                try pollState(&device, block: block)
                device.stateFailure = nil
                if device.fifo == nil { succeeded(&device) }
            } catch {
                if device.fifo == nil {
                    failed(&device, error)
                    turnFailed = true
                    silent = !Self.isAnswer(error)
                } else {
                    stepFailed(&device, \.stateFailure, "state block", error)
                }
            }
        }
        if !silent, config.profile.clockRegister != nil, now >= device.nextClockCheck {
            device.nextClockCheck = now + Self.clockCheckMillis
            do {
                try checkClock(&device)
                device.clockFailure = nil
            } catch {
                stepFailed(&device, \.clockFailure, "clock", error)
            }
        }
        if turnFailed {
            device.nextDue = now + device.health.nextPollDelay(pollMillis: config.pollMillis)
        } else {
            switch turn {
            case let .holdOff(millis): device.nextDue = now + millis
            case .regular:
                device.nextDue = now + (device.fifo == nil && config.profile.map == nil ? config.statePollMillis : config.pollMillis)
            }
        }
    }

    static let clockCheckMillis: Int64 = 600_000
    static let clockToleranceSeconds: Int64 = 5

    /// Whether a failed step still got an answer from the device (an exception, a garbled header), so its
    /// other steps may go ahead; a timeout or a lost link means it would not answer them either.
    static func isAnswer(_ error: any Error) -> Bool {
        guard let error = error as? ModbusError else { return true }
        if case .exception = error.code { return true }
        return false
    }

    /// A step other than the one that decides whether the device answers failed: counted, and logged once
    /// while it keeps failing the same way.
    func stepFailed(_ device: inout PolledDevice, _ last: WritableKeyPath<PolledDevice, String?>, _ step: String, _ error: any Error) {
        device.link.errorCount.wrappingIncrement(ordering: .relaxed)
        let message = "\(step) failed: \(error)"
        guard device[keyPath: last] != message else { return }
        device[keyPath: last] = message
        // An exception is the device's own answer, worth a warning; a timeout is a notice, rate-limited as in `failed`.
        if Self.isAnswer(error) {
            logger.warning("\(message); the event log is read regardless", metadata: ["device": "\(device.config.id)"])
        } else {
            logger.notice("\(message); the event log is read regardless",
                          metadata: ["device": "\(device.config.id)", LogKind.key: "\(Self.logKind(of: error))"])
        }
    }

    /// Reads the event log once: writes a due ack first, then the header or header and window; with a device that
    /// takes function 23 (`ack_with_read`), the ack and the first read are one transaction.
    func pollLog(_ device: inout PolledDevice) throws -> LogTurn {
        guard var fifo = device.fifo, let log = device.config.profile.eventLog, let decoder = device.decoder else { return .regular }
        let now = monotonicMillis()
        if device.serial == nil || now >= device.nextSerialCheck { try refreshSerial(&device, now: now) }
        if !device.cursorLoaded { resumeFromJournal(&device, &fifo) }
        defer { device.fifo = fifo }
        let unit = device.config.unit
        let layout = device.config.profile.layout
        /// The read a function 23 ack already made: its registers are in `buffer`.
        var readWithAck: EventLogStateMachine.Read?
        // A window is read only while the ring has room for it; the device's log keeps the records meanwhile.
        func ringHasRoomForAWindow() -> Bool { ring.capacity - ring.count >= log.windowRecords + 2 }
        if case let .writeAck(seq) = fifo.nextStep(committed: device.link.committed), bus.readOnly {
            // Read-only: the journal has the records, the device's ack_seq stays its other reader's. The reader goes
            // on from what it emitted, and the records the window shows again are skipped (or, after a restart,
            // recognised by the journal).
            fifo.ackWritten(seq)
        } else if case let .writeAck(seq) = fifo.nextStep(committed: device.link.committed) {
            var refusal: ModbusError?
            // Not right after a refusal: the resynchronised ack goes the way SPEC 3 names (function 16).
            if device.ackWithRead, fifo.refusedAcks == 0, ringHasRoomForAWindow() {
                var acked = fifo
                acked.ackWritten(seq)
                if case let .read(kind) = acked.nextStep(committed: device.link.committed) {
                    switch try ackWithRead(seq, then: kind, &device, log: log, layout: layout) {
                    case .read:
                        readWithAck = kind
                        device.ackWithReadRefusals = 0
                    case let .refused(error):
                        refusal = error
                        device.ackWithReadRefusals += 1
                        if device.ackWithReadRefusals >= Self.ackWithReadRefusalsBeforeFallBack {
                            // A device that takes acks with function 16 (in between) but never with 23.
                            fallBackFromAckWithRead(&device, "it refused \(device.ackWithReadRefusals) acks with function 23 in a row (\(error.detail)) while function 16 took the acks in between")
                        }
                    case .fellBack: break
                    }
                }
            }
            if readWithAck == nil, refusal == nil { refusal = try writeAck(seq, unit: unit, log: log, layout: layout) }
            if let refusal {
                // It answered, so it is there; it restarted, or the write reached it garbled. Resynchronise from
                // its own ack_seq after a pause, never giving up on acking it.
                fifo.ackRejected()
                device.nextSerialCheck = 0  // perhaps another controller: its serial before the next read
                let delay = fifo.ackRetryDelay(pollMillis: device.config.pollMillis)
                logger.warning("device refused ack_seq \(seq) (\(refusal.detail)); reading its log again from its own ack_seq in \(delay)ms",
                               metadata: ["device": "\(device.config.id)"])
                succeeded(&device)
                return .holdOff(delay)
            }
            fifo.ackWritten(seq)
            device.ackedWithRead = readWithAck != nil ? (boot: fifo.boot ?? 0, seq: seq) : nil
        }
        guard case var .read(kind) = fifo.nextStep(committed: device.link.committed) else { return .regular }
        guard readWithAck != nil || ringHasRoomForAWindow() else { return .regular }
        while true {
            let count = kind == .full ? Int(log.fullReadCount) : Int(log.headerCount)
            if readWithAck == nil {
                try transact { c throws(ModbusError) in try c.readRegisters(unit: unit, address: log.address, count: count, into: buffer) }
            }
            readWithAck = nil
            let words = UnsafeBufferPointer(start: buffer, count: count)
            let header = log.header(from: words, layout: layout)
            let seqs: [UInt32]? = kind == .header ? nil : (0..<min(Int(header.windowCount), log.windowRecords)).map {
                decoder.seq(of: words, base: Int(log.windowOffset) + $0 * log.recordSize)
            }
            if let acked = device.ackedWithRead, let problem = ackNotApplied(acked, header: header, windowSeqs: seqs, fifo: fifo) {
                // Nothing of this read is used: the same ack is written again with function 16 at once (it is due).
                fallBackFromAckWithRead(&device, problem)
                fifo.ackNotApplied(acked.seq)
                return .regular
            }
            let before = (boot: fifo.boot, last: fifo.lastEmitted)
            let outcome = fifo.logRead(header, windowSeqs: seqs)
            if let problem = outcome.badHeader {
                device.metrics.badRecords.increment()
                device.nextSerialCheck = 0
                throw BadEventLogHeader(detail: problem)
            }
            // A new boot id (confirmed by a second read), or seqs going back within one, may be a new controller:
            // its records carry its own serial.
            let restarted = outcome.bootChanged || (before.boot == header.bootID && header.headSeq < before.last)
            if restarted {
                do throws(ModbusError) { try refreshSerial(&device, now: now) } catch {
                    // Nothing of this read is emitted: start the log over, so the records are read again.
                    fifo = EventLogStateMachine(windowRecords: fifo.windowRecords, alwaysReadFull: fifo.alwaysReadFull)
                    device.serial = nil
                    device.cursorLoaded = false
                    throw error
                }
            } else if outcome.lost != nil || !outcome.problems.isEmpty {
                // Any other anomaly of the log may be a controller swapped without a restart: the serial again, so this
                // read's records already carry a new one; if it does not answer, they keep the old and the next poll asks.
                do throws(ModbusError) { try refreshSerial(&device, now: now) } catch { device.nextSerialCheck = 0 }
            }
            succeeded(&device)  // device.online goes on the ring before the first records it answered with
            if outcome.confirmingBoot {
                logger.notice("device shows boot_id \(header.bootID) instead of \(fifo.boot.map(String.init) ?? "none"); confirming with the next read",
                              metadata: ["device": "\(device.config.id)", LogKind.key: "\(LogKind.deviceBootID)"])
                return .regular
            }
            publish(outcome, of: &device, header: header, words: words, seqs: seqs ?? [], log: log)
            // What it emitted is acked as soon as the journal commits it (the commit wakes this device), and the
            // backlog read then; a read that emitted nothing (a window gap, records awaiting the ack of another
            // reader) is read again at the next regular poll, never in a tight loop.
            guard outcome.readWindowNow, kind == .header, ringHasRoomForAWindow() else { return .regular }
            kind = .full
        }
    }

    /// A restarted reader starts where the journal stands with the device's log, when the same controller answers
    /// (its serial): what the journal holds beyond the device's `ack_seq` is acknowledged, not read again, a loss it
    /// reported is not reported again, and one the device's `ack_seq` passed since is reported (issue 7). Without a
    /// cursor (a new journal, another controller) it starts from the device's own `ack_seq`.
    func resumeFromJournal(_ device: inout PolledDevice, _ fifo: inout EventLogStateMachine) {
        device.cursorLoaded = true
        guard fifo.boot == nil, let cursor = device.config.loadLogCursor?(),
              cursor.serial == device.serial ?? .none else { return }
        fifo.resume(boot: cursor.boot, through: cursor.seq)
        device.link.committed(boot: cursor.boot, seq: cursor.seq)
        logger.debug("resuming the event log from the journal: boot_id \(cursor.boot), seq \(cursor.seq)",
                     metadata: ["device": "\(device.config.id)"])
    }

    /// Function 23 acks refused in a row, with function 16 taking the acks in between, before a device is acked
    /// with function 16 for good: a restart or a garbled write refuses one ack, not three in a row.
    static let ackWithReadRefusalsBeforeFallBack = 3

    /// What a function 23 ack came to.
    enum AckWithRead {
        /// Written, and the read made: its registers are in `buffer`.
        case read
        /// The device answered exception 03: a refused ack, as with function 16.
        case refused(ModbusError)
        /// The device does not take function 23 (said and counted): write the ack with function 16.
        case fellBack
    }

    /// Writes `ack_seq` and reads `kind` of the log after it in one transaction (function 23, which writes before it
    /// reads). Exception 01 or 02, or no reply (or a garbled one, or a dropped link) while a plain read then answers,
    /// means the device does not take function 23: it falls back to 16 + 03 for good, and the ack is written with function 16 (again, if the write
    /// of this transaction was applied after all: writing the same `ack_seq` twice releases nothing more).
    func ackWithRead(_ seq: UInt32, then kind: EventLogStateMachine.Read, _ device: inout PolledDevice, log: EventLogLayout,
                     layout: WordLayout) throws(ModbusError) -> AckWithRead {
        let unit = device.config.unit
        let count = kind == .full ? Int(log.fullReadCount) : Int(log.headerCount)
        let words = log.ackWords(seq, layout: layout)
        do {
            try transact { c throws(ModbusError) in
                try c.writeAndReadRegisters(unit: unit, writeAddress: log.address + log.ackSeq, values: words,
                                            readAddress: log.address, count: count, into: buffer)
            }
            return .read
        } catch {
            switch error.code {
            case .exception(.illegalDataValue):
                return .refused(error)
            case .exception(.illegalFunction), .exception(.illegalDataAddress):
                fallBackFromAckWithRead(&device, "it answered function 23 with \(error.detail)")
                return .fellBack
            case .timeout, .badReply, .connection:
                // A device may drop a request of a function it does not know, a converter may garble its reply or
                // close the link. A plain read tells whether the device is there; an offline device costs no second
                // timeout (it has failed polls already).
                guard device.health.consecutiveFailures == 0 else { throw error }
                do {
                    try transact { c throws(ModbusError) in
                        try c.readRegisters(unit: unit, address: log.address, count: Int(log.headerCount), into: buffer)
                    }
                } catch _ { throw error }
                fallBackFromAckWithRead(&device, "function 23 got \(error.detail) while a plain read (function 03) then answered")
                return .fellBack
            default:
                throw error
            }
        }
    }

    /// Why a read shows that the ack written with function 23 (`acked`) never reached the device's log, or nil.
    func ackNotApplied(_ acked: (boot: UInt16, seq: UInt32), header: EventLogHeader, windowSeqs: [UInt32]?,
                       fifo: EventLogStateMachine) -> String? {
        guard header.bootID == acked.boot, fifo.boot == acked.boot, fifo.implausibility(of: header) == nil else { return nil }
        if header.ackSeq < acked.seq {
            return "its ack_seq reads \(header.ackSeq) after function 23 wrote \(acked.seq)"
        }
        if let first = windowSeqs?.first, first <= acked.seq {
            return "its window starts at seq \(first) after function 23 wrote ack_seq \(acked.seq) (the write did not reach its log)"
        }
        return nil
    }

    /// The device does not take function 23 as SPEC 3.4's ack: from now on function 16, then 03. Said once, counted.
    func fallBackFromAckWithRead(_ device: inout PolledDevice, _ reason: String) {
        guard device.ackWithRead else { return }
        device.ackWithRead = false
        device.ackedWithRead = nil
        device.metrics.ackWithReadFellBack()
        logger.warning("device profile says ack_with_read, but \(reason); acking with function 16, then reading with 03, from now on",
                       metadata: ["device": "\(device.config.id)"])
    }

    /// Writes `ack_seq`; returns the refusal when the device answered exception 03 to it.
    func writeAck(_ seq: UInt32, unit: UInt8, log: EventLogLayout, layout: WordLayout) throws(ModbusError) -> ModbusError? {
        do {
            try transact { c throws(ModbusError) in
                try c.writeRegisters(unit: unit, address: log.address + log.ackSeq, values: log.ackWords(seq, layout: layout))
            }
            return nil
        } catch {
            guard error.code == .exception(.illegalDataValue) else { throw error }
            return error
        }
    }

    func publish(_ outcome: EventLogStateMachine.Outcome, of device: inout PolledDevice, header: EventLogHeader,
                 words: UnsafeBufferPointer<UInt16>, seqs: [UInt32], log: EventLogLayout) {
        let slot = device.config.slot
        let observed = Timestamp.now.millisecondsSinceEpoch
        for problem in outcome.problems {
            device.metrics.badRecords.increment()
            logger.warning("bad event log: \(problem)", metadata: ["device": "\(device.config.id)"])
        }
        if outcome.bootChanged {
            logger.notice("device restarted its seq counter (boot_id \(header.bootID))",
                          metadata: ["device": "\(device.config.id)", LogKind.key: "\(LogKind.deviceBootID)"])
        }
        if let lost = outcome.lost {
            logger.error("device overwrote \(lost.count) unread event(s), seq \(lost.lowerBound)...\(lost.upperBound)",
                         metadata: ["device": "\(device.config.id)", LogKind.key: "\(LogKind.eventsLost)"])
            device.metrics.eventsLost.increment(by: Int64(lost.count))
            enqueue(EventRecord(origin: .eventsLost, device: slot, boot: header.bootID, serial: device.serial ?? .none,
                                first: lost.lowerBound, second: lost.upperBound, observedAtMillis: observed))
        }
        for index in outcome.emit {
            let base = Int(log.windowOffset) + index * log.recordSize
            var record = EventRecord(origin: .device, device: slot, boot: header.bootID, serial: device.serial ?? .none,
                                     seq: seqs[index], observedAtMillis: observed)
            for offset in 0..<log.recordSize { record.words[offset] = words[base + offset] }
            enqueue(record)
        }
        if !outcome.emit.isEmpty {
            device.link.lastEventMillis.store(observed, ordering: .relaxed)
            device.metrics.lastEvent.record(Double(observed) / 1000)
        }
        journalBell.ring()
    }

    /// Puts an entry on the ring, waiting while it is full; only a stop request ends the wait.
    func enqueue(_ record: EventRecord) {
        while !ring.push(record, timeout: .milliseconds(100)) {
            if stage.isStopping {
                logger.warning("stopping with a full ring; the device keeps the unacknowledged events")
                return
            }
        }
    }

    /// Reads the serial before the first log read, every `serialCheckMillis` (a controller swapped for one that
    /// carries on with the same boot id and upward seqs shows nothing else), after a restart, an outage or any log
    /// anomaly. From then on the device's records carry it: a changed serial is another controller, whose ids differ.
    func refreshSerial(_ device: inout PolledDevice, now: Int64) throws(ModbusError) {
        let serial = try readSerial(device)
        device.nextSerialCheck = now + device.config.serialCheckMillis
        if let previous = device.serial, previous != serial {
            logger.notice("device serial changed from '\(previous)' to '\(serial)': another controller answers, its events get ids with the new serial",
                          metadata: ["device": "\(device.config.id)"])
        }
        device.serial = serial
    }

    /// Reads the identity block's serial (function 03), keeping the characters an event id may hold.
    func readSerial(_ device: PolledDevice) throws(ModbusError) -> DeviceSerial {
        guard let (address, field) = device.config.profile.serialRegisters else { return .none }
        let unit = device.config.unit
        try transact { c throws(ModbusError) in
            try c.readRegisters(unit: unit, address: address, count: field.registerCount, into: buffer)
        }
        let reading = RegisterReading(words: UnsafeBufferPointer(start: buffer, count: field.registerCount),
                                      layout: device.config.profile.layout)
        return DeviceSerial(sanitising: reading.bytes(field))
    }

    func pollState(_ device: inout PolledDevice, block: RegisterBlock) throws(ModbusError) {
        let unit = device.config.unit
        try transact { c throws(ModbusError) in try c.readRegisters(unit: unit, address: block.address, count: Int(block.count), into: buffer) }
        let fields = RegisterReading(words: UnsafeBufferPointer(start: buffer, count: Int(block.count)), layout: device.config.profile.layout)
            .presented(block)
        board.update(slot: device.config.slot, fields: fields)
    }

    /// Reads the device clock; more than 5 s off is reported, and set when `time_sync` is on (function 16).
    func checkClock(_ device: inout PolledDevice) throws(ModbusError) {
        guard let register = device.config.profile.clockRegister else { return }
        let unit = device.config.unit
        try transact { c throws(ModbusError) in try c.readRegisters(unit: unit, address: register, count: 2, into: buffer) }
        let layout = device.config.profile.layout
        let deviceSeconds = Int64(RegisterReading(words: UnsafeBufferPointer(start: buffer, count: 2), layout: layout).uint32(at: 0))
        let now = Timestamp.now
        let skew = deviceSeconds - now.seconds
        device.metrics.clockOffset?.record(skew)
        guard abs(skew) > Self.clockToleranceSeconds else { return }
        let setting = device.config.timeSync && !bus.readOnly && !device.clockWriteRefused && hostClockMayBeWritten()
        logger.warning("device clock is off by \(skew)s\(setting ? "; setting it" : "")", metadata: ["device": "\(device.config.id)"])
        enqueue(EventRecord(origin: .clockSkew, device: device.config.slot, boot: 0,
                            first: UInt32(bitPattern: Int32(clamping: skew)), observedAtMillis: now.millisecondsSinceEpoch))
        journalBell.ring()
        guard setting else { return }
        let seconds = UInt32(truncatingIfNeeded: Timestamp.now.seconds)
        var words = [UInt16(seconds >> 16), UInt16(seconds & 0xFFFF)]
        if layout.wordOrder == .lowFirst { words.reverse() }
        if layout.byteOrder == .little { words = words.map(\.byteSwapped) }
        let clockWords = words
        guard !device.clockWriteRefused else { return }
        do {
            try transact { c throws(ModbusError) in try c.writeRegisters(unit: unit, address: register, values: clockWords) }
        } catch {
            guard case .exception = error.code else { throw error }
            // A read-only clock is common: said once, and not asked again while this configuration runs.
            device.clockWriteRefused = true
            logger.warning("device refused setting its clock (\(error.detail)); leaving it as it is",
                           metadata: ["device": "\(device.config.id)"])
        }
    }

    /// Whether the host clock may be written into devices: not while the kernel says it is unsynchronised (a box
    /// without a real-time clock boots with a stale one). Each lasting state is logged once; the skew is still reported.
    func hostClockMayBeWritten() -> Bool {
        let status = hostClock()
        defer { hostClockLogged = status }
        switch status {
        case .synchronised:
            if hostClockLogged != nil, hostClockLogged != .synchronised { logger.notice("host clock synchronised: device clocks are set again") }
            return true
        case .unsynchronised:
            if hostClockLogged != .unsynchronised {
                logger.warning("host clock is not synchronised (adjtimex: STA_UNSYNC): not setting device clocks until it is; skews are still reported")
            }
            return false
        case let .unknown(code):
            if hostClockLogged != status {
                logger.warning("cannot read whether the host clock is synchronised (adjtimex: \(String(cString: strerror(code)))): setting device clocks without that check")
            }
            return true
        }
    }

    /// Runs one request: keeps the silence the line needs, measures it, counts it by result.
    func transact(_ body: (ModbusConnection) throws(ModbusError) -> Void) throws(ModbusError) {
        if !runningCommand, !commands.isEmpty { runWaitingCommands() }
        let gap = monotonicMicros() - lastTransactionEnd
        if gap < requiredSilenceMicros {
            usleep(UInt32(requiredSilenceMicros - gap))
        }
        let started = ContinuousClock.now
        let discarded = connection.discardedBytes
        let late = connection.lateReplies
        defer {
            lastTransactionEnd = monotonicMicros()
            metrics.busy(ContinuousClock.now - started)
            if connection.discardedBytes != discarded { metrics.discardedBytes.increment(by: connection.discardedBytes - discarded) }
            if connection.lateReplies != late { metrics.lateReplies.increment(by: connection.lateReplies - late) }
        }
        do {
            try body(connection)
            metrics.count(nil)
        } catch {
            metrics.count(error)
            throw error
        }
    }

    func succeeded(_ device: inout PolledDevice) {
        device.metrics.poll(nil)
        guard device.health.pollSucceeded() == .cameOnline else { return }
        logger.info("device online", metadata: ["device": "\(device.config.id)", "modbus.unit": "\(device.config.unit)",
                                                LogKind.key: "\(LogKind.deviceOnline)"])
        transition(&device, online: true)
    }

    func failed(_ device: inout PolledDevice, _ error: any Error) {
        device.metrics.poll(error)
        device.link.errorCount.wrappingIncrement(ordering: .relaxed)
        let message = "\(device.config.id) on \(error)"
        // One timeout is no warning: transport errors of an online device are notices, and the log handler writes
        // the first of a run and then one summary a minute ("… 37 more timeouts in the last 60 s").
        if device.health.status != .offline {
            logger.notice("\(message)", metadata: ["device": "\(device.config.id)", LogKind.key: "\(Self.logKind(of: error))"])
        }
        guard device.health.pollFailed() == .wentOffline else { return }
        device.serial = nil  // whatever answers next may be a replacement controller
        logger.error("device offline after \(DeviceHealthStateMachine.failuresBeforeOffline) failed polls: \(message)",
                     metadata: ["device": "\(device.config.id)", LogKind.key: "\(LogKind.deviceOffline)"])
        transition(&device, online: false)
    }

    func transition(_ device: inout PolledDevice, online: Bool) {
        device.link.setStatus(online ? .online : .offline)
        device.up.record(online ? 1 : 0)
        board.setOnline(slot: device.config.slot, online)
        enqueue(EventRecord(origin: online ? .deviceOnline : .deviceOffline, device: device.config.slot,
                            boot: device.fifo?.boot ?? 0, observedAtMillis: Timestamp.now.millisecondsSinceEpoch))
        journalBell.ring()
    }
}

extension BusPoller {
    /// The log kind of a failed poll, so each kind of transport error has its own message id and rate limit.
    static func logKind(of error: any Error) -> LogKind {
        guard let error = error as? ModbusError else { return .modbusError }
        switch error.code {
        case .timeout: return .modbusTimeout
        case .badReply: return .modbusBadReply
        case .exception: return .modbusException
        case .connection: return .modbusConnection
        case .system: return .modbusError
        }
    }
}

/// An event log header no device following SPEC 3.4 can hold: the poll fails as a garbled reply would.
struct BadEventLogHeader: Error, CustomStringConvertible {
    var detail: String
    var description: String { "bad event log header: \(detail)" }
}
