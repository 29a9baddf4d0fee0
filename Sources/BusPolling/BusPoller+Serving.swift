import AccessModel
import DeviceProfiles
import EventRing
import Logging
import ModbusTransport
#if canImport(Glibc)
import Glibc
#endif

extension BusPoller {
    /// One turn of one device: state block and clock when due, then its event log.
    func serve(_ index: Int, now: Int64) {
        var device = devices[index]
        defer { devices[index] = device }
        device.link.lastPollMillis.store(Timestamp.now.millisecondsSinceEpoch, ordering: .relaxed)
        do {
            if let block = device.config.profile.state, now >= device.nextStatePoll {
                try pollState(&device, block: block)
                device.nextStatePoll = now + device.config.statePollMillis
            }
            if device.config.profile.clockRegister != nil, now >= device.nextClockCheck {
                try checkClock(&device)
                device.nextClockCheck = now + Self.clockCheckMillis
            }
            if device.fifo != nil { try pollLog(&device) }
            succeeded(&device)
            let fifo = device.fifo
            device.nextDue = fifo?.pendingAck == nil && fifo?.moreUnread == true
                ? now : now + (fifo == nil ? device.config.statePollMillis : device.config.pollMillis)
        } catch {
            failed(&device, error)
            device.nextDue = now + device.health.nextPollDelay(pollMillis: device.config.pollMillis)
        }
    }

    static let clockCheckMillis: Int64 = 600_000
    static let clockToleranceSeconds: Int64 = 5

    /// Reads the event log once: writes a due ack first, then the header or header and window.
    func pollLog(_ device: inout PolledDevice) throws(ModbusError) {
        guard var fifo = device.fifo, let log = device.config.profile.eventLog, let decoder = device.decoder else { return }
        if device.serial == nil { device.serial = try readSerial(device) }
        defer { device.fifo = fifo }
        let unit = device.config.unit
        let layout = device.config.profile.layout
        if case let .writeAck(seq) = fifo.nextStep(committed: device.link.committed) {
            do {
                try transact { c throws(ModbusError) in
                    try c.writeRegisters(unit: unit, address: log.address + log.ackSeq, values: log.ackWords(seq, layout: layout))
                }
                fifo.ackWritten(seq)
            } catch where error.code == .exception(.illegalDataValue) {
                logger.warning("device refused ack_seq \(seq) (above its head_seq): it restarted; reading its log again",
                               metadata: ["device": "\(device.config.id)"])
                fifo.ackRejected()
            }
        }
        guard case var .read(kind) = fifo.nextStep(committed: device.link.committed) else { return }
        guard ring.capacity - ring.count >= log.windowRecords + 2 else { return }  // the device's log keeps them meanwhile
        while true {
            let count = kind == .full ? Int(log.fullReadCount) : Int(log.headerCount)
            try transact { c throws(ModbusError) in try c.readRegisters(unit: unit, address: log.address, count: count, into: buffer) }
            let words = UnsafeBufferPointer(start: buffer, count: count)
            let header = log.header(from: words, layout: layout)
            let seqs: [UInt32]? = kind == .header ? nil : (0..<min(Int(header.windowCount), log.windowRecords)).map {
                decoder.seq(of: words, base: Int(log.windowOffset) + $0 * log.recordSize)
            }
            // A new boot id, or seqs going back within one, may be a new controller: its records carry its own serial.
            let restarted = fifo.boot.map { $0 != header.bootID || header.headSeq < fifo.lastEmitted } ?? false
            let outcome = fifo.logRead(header, windowSeqs: seqs)
            if restarted {
                do throws(ModbusError) { device.serial = try readSerial(device) } catch {
                    // Nothing of this read is emitted: start the log over, so the records are read again.
                    fifo = EventLogStateMachine(windowRecords: fifo.windowRecords, alwaysReadFull: fifo.alwaysReadFull)
                    device.serial = nil
                    throw error
                }
            }
            succeeded(&device)  // device.online goes on the ring before the first records it answered with
            publish(outcome, of: &device, header: header, words: words, seqs: seqs ?? [], log: log)
            guard outcome.readWindowNow, kind == .header else { return }
            kind = .full
        }
    }

    func publish(_ outcome: EventLogStateMachine.Outcome, of device: inout PolledDevice, header: EventLogHeader,
                 words: UnsafeBufferPointer<UInt16>, seqs: [UInt32], log: EventLogLayout) {
        let slot = device.config.slot
        let observed = Timestamp.now.millisecondsSinceEpoch
        for problem in outcome.problems {
            metrics.badRecords.increment()
            logger.warning("bad event log: \(problem)", metadata: ["device": "\(device.config.id)"])
        }
        if outcome.bootChanged {
            logger.notice("device restarted its seq counter (boot_id \(header.bootID))", metadata: ["device": "\(device.config.id)"])
        }
        if let lost = outcome.lost {
            logger.error("device overwrote \(lost.count) unread event(s), seq \(lost.lowerBound)...\(lost.upperBound)",
                         metadata: ["device": "\(device.config.id)"])
            enqueue(EventRecord(origin: .eventsLost, device: slot, boot: header.bootID, first: lost.lowerBound,
                                second: lost.upperBound, observedAtMillis: observed))
        }
        for index in outcome.emit {
            let base = Int(log.windowOffset) + index * log.recordSize
            var record = EventRecord(origin: .device, device: slot, boot: header.bootID, serial: device.serial ?? .none,
                                     seq: seqs[index], observedAtMillis: observed)
            for offset in 0..<log.recordSize { record.words[offset] = words[base + offset] }
            enqueue(record)
        }
        if !outcome.emit.isEmpty { device.link.lastEventMillis.store(observed, ordering: .relaxed) }
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
        guard abs(skew) > Self.clockToleranceSeconds else { return }
        logger.warning("device clock is off by \(skew)s\(device.config.timeSync ? "; setting it" : "")", metadata: ["device": "\(device.config.id)"])
        enqueue(EventRecord(origin: .clockSkew, device: device.config.slot, boot: 0,
                            first: UInt32(bitPattern: Int32(clamping: skew)), observedAtMillis: now.millisecondsSinceEpoch))
        journalBell.ring()
        guard device.config.timeSync else { return }
        let seconds = UInt32(truncatingIfNeeded: Timestamp.now.seconds)
        var words = [UInt16(seconds >> 16), UInt16(seconds & 0xFFFF)]
        if layout.wordOrder == .lowFirst { words.reverse() }
        if layout.byteOrder == .little { words = words.map(\.byteSwapped) }
        let clockWords = words
        try transact { c throws(ModbusError) in try c.writeRegisters(unit: unit, address: register, values: clockWords) }
    }

    /// Runs one request: keeps the silence the line needs, measures it, counts it by result.
    func transact(_ body: (ModbusConnection) throws(ModbusError) -> Void) throws(ModbusError) {
        let gap = monotonicMicros() - lastTransactionEnd
        if gap < requiredSilenceMicros {
            usleep(UInt32(requiredSilenceMicros - gap))
        }
        let started = ContinuousClock.now
        defer {
            lastTransactionEnd = monotonicMicros()
            metrics.busy(ContinuousClock.now - started)
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
        device.lastLoggedFailure = nil
        guard device.health.pollSucceeded() == .cameOnline else { return }
        logger.info("device online", metadata: ["device": "\(device.config.id)", "modbus.unit": "\(device.config.unit)"])
        transition(&device, online: true)
    }

    func failed(_ device: inout PolledDevice, _ error: any Error) {
        device.link.errorCount.wrappingIncrement(ordering: .relaxed)
        let message = "\(device.config.id) on \(error)"
        if device.lastLoggedFailure != message, device.health.status != .offline {
            logger.warning("\(message)", metadata: ["device": "\(device.config.id)"])
            device.lastLoggedFailure = message
        }
        guard device.health.pollFailed() == .wentOffline else { return }
        device.serial = nil  // whatever answers next may be a replacement controller
        logger.error("device offline after \(DeviceHealthStateMachine.failuresBeforeOffline) failed polls: \(message)",
                     metadata: ["device": "\(device.config.id)"])
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
