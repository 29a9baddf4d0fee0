import AccessModel

/// The holding-register map of SPEC 3 (map version 1): what reads return and what writes do.
///
/// Readable: HR 0–35 (16–19 and unused state registers read 0) and 100–205. Writable, each only as one
/// function 16 (or the write of one function 23) covering exactly the field: clock 12–13, command 30–33, ack_seq 106–107. Any other write
/// answers exception 02 (read-only or partial field); a bad written value answers exception 03.
extension SimulatedDevice {
    static let readableRanges: [ClosedRange<Int>] = [0...35, 100...205]

    /// Reads `count` holding registers from `address` (function 03).
    public func readRegisters(address: Int, count: Int) throws(ModbusException) -> [UInt16] {
        try withRegisters(address: address, count: count) { Array($0) }
    }

    /// Reads `count` holding registers from `address` (function 03) and hands them to `body`, holding the lock: one
    /// lock and no allocation per read (the bench's simulators answer tens of thousands of reads a second).
    func withRegisters<R>(address: Int, count: Int, _ body: (UnsafeBufferPointer<UInt16>) -> R) throws(ModbusException) -> R {
        guard (1...125).contains(count) else { throw .illegalDataValue("cannot read \(count) registers (1–125)") }
        let range = address...(address + count - 1)
        guard Self.readableRanges.contains(where: { $0.contains(range.lowerBound) && $0.contains(range.upperBound) })
        else { throw .illegalDataAddress("registers \(range.lowerBound)–\(range.upperBound) are not mapped") }
        let eventBlock = range.lowerBound >= 100
        let base = eventBlock ? 100 : 0
        return try withUnsafeTemporaryAllocation(of: UInt16.self, capacity: 106) { (storage) throws(ModbusException) -> R in
            let words = UnsafeMutableBufferPointer(rebasing: storage[0..<(eventBlock ? 106 : 36)])
            words.initialize(repeating: 0)
            return try locked { () throws(ModbusException) -> R in
                if activeFaults.failingStateBlock, range.overlaps(20...29) {
                    throw .serverFailure("the state block failed (fault failing_state_block)")
                }
                if eventBlock { fillEventBlockLocked(words) } else { fillLowBlockLocked(words) }
                return body(UnsafeBufferPointer(rebasing: words[(range.lowerBound - base)...(range.upperBound - base)]))
            }
        }
    }

    /// Writes `values` from `address` (function 16, or function 06 with one value).
    public func writeRegisters(address: Int, values: [UInt16]) throws(ModbusException) {
        guard (1...123).contains(values.count) else {
            throw .illegalDataValue("cannot write \(values.count) registers (1–123)")
        }
        let u32 = values.count >= 2 ? UInt32(values[0]) << 16 | UInt32(values[1]) : 0
        switch (address, values.count) {
        case (12, 2):
            if currentFaults.readOnlyClock { throw .illegalDataAddress("the clock is read-only (fault read_only_clock)") }
            lock.withLock {
                clockOffsetMilliseconds = Int64(u32) * 1000 - Timestamp.now.millisecondsSinceEpoch
                clockSynchronised = true
            }
        case (30, 4):
            try execute(command: values[0], argument: values[1], id: UInt32(values[2]) << 16 | UInt32(values[3]))
        case (106, 2):
            try locked { () throws(ModbusException) in
                if ackRefusalsLeft > 0 {
                    ackRefusalsLeft -= 1
                    throw .illegalDataValue("ack_seq \(u32) refused (fault refuse_acks)")
                }
                try log.acknowledge(u32)
                ackRegisterOverride = nil
            }
        default:
            let last = address + values.count - 1
            throw .illegalDataAddress("registers \(address)–\(last) are read-only or only part of a writable field")
        }
    }

    /// Function 23 (Read/Write Multiple Registers): writes `values` at `writeAddress` as function 16 does, then reads
    /// `count` registers at `readAddress` and hands them to `body`, so the reply already shows what the write did (the
    /// Modbus specification orders the write before the read). Under the fault `refuseFunction23` it answers exception 01.
    func withWriteThenRead<R>(writeAddress: Int, values: [UInt16], readAddress: Int, count: Int,
                              _ body: (UnsafeBufferPointer<UInt16>) -> R) throws(ModbusException) -> R {
        let faults = lock.withLock {
            function23Count += 1
            return activeFaults
        }
        if faults.refuseFunction23 { throw .illegalFunction("function 23 is not supported (fault refuse_function_23)") }
        guard (1...125).contains(count) else { throw .illegalDataValue("cannot read \(count) registers (1–125)") }
        if faults.function23SkipsLog, writeAddress == 106, values.count == 2 {
            let seq = UInt32(values[0]) << 16 | UInt32(values[1])
            try locked { () throws(ModbusException) in
                guard seq <= log.head else { throw .illegalDataValue("ack_seq \(seq) is above head_seq \(log.head)") }
                ackRegisterOverride = seq
            }
        } else {
            try writeRegisters(address: writeAddress, values: values)
        }
        return try withRegisters(address: readAddress, count: count, body)
    }

    /// The command block of SPEC 3.3: validates first (exception 03 for an unknown code or argument), then
    /// executes once per command id: a write repeating `last_command_id` is answered and not executed again.
    func execute(command: UInt16, argument: UInt16, id: UInt32) throws(ModbusException) {
        let point = Int16(bitPattern: argument)
        try locked { () throws(ModbusException) in
            settleLocked()
            switch (kind, command) {
            case (.faceDoor, 1):
                guard (1...4).contains(point) else { throw .illegalDataValue("door \(point) does not exist") }
            case (.plateReader, 1), (.plateReader, 2): break
            case (.elevator, 1):
                guard (-10...128).contains(point) else { throw .illegalDataValue("floor \(point) does not exist") }
            default:
                throw .illegalDataValue("\(kind) has no command \(command)")
            }
            commandWrites += 1
            guard id != lastCommandID else { return }
            let now = Timestamp.now.millisecondsSinceEpoch
            switch (kind, command) {
            case (.faceDoor, _):
                state[1] = 1
                lockReleasedUntil = now + Int64(lockReleaseMilliseconds)
            case (.plateReader, 1): state[0] = 1
            case (.plateReader, 2): state[0] = 0
            default:
                elevatorTrip = ElevatorTrip(from: Int16(bitPattern: state[0]), to: point, started: now)
            }
            commandArgument = argument
            lastCommandID = id
            executedCommands += 1
            _ = recordLocked(code: 8, point: point, direction: 0, value: UInt32(command), extra: id,
                             subject: [UInt8](repeating: 0, count: 40))
            settleLocked()
        }
    }

    /// Brings time-driven state up to now: a released lock locks again, a car moves one floor per
    /// `ElevatorTrip.millisecondsPerFloor` towards its call and opens its door on arrival.
    func settleLocked() {
        let now = Timestamp.now.millisecondsSinceEpoch
        if let until = lockReleasedUntil, now >= until {
            state[1] = 0
            lockReleasedUntil = nil
        }
        if let trip = elevatorTrip {
            let distance = Int(trip.to) - Int(trip.from)
            let travelled = min(abs(distance), Int((now - trip.started) / ElevatorTrip.millisecondsPerFloor))
            state[0] = UInt16(bitPattern: Int16(Int(trip.from) + (distance < 0 ? -travelled : travelled)))
            if travelled == abs(distance) {
                state[1] = 0
                state[2] = 2
                elevatorTrip = nil
            } else {
                state[1] = distance > 0 ? 1 : 2
                state[2] = 0
            }
        }
    }

    private func fillLowBlockLocked(_ words: UnsafeMutableBufferPointer<UInt16>) {
        words[0] = kind.rawValue
        words[1] = 1
        let serialBytes = (try? TextEncoding.ascii.encode(serialLocked, length: 16)) ?? [UInt8](repeating: 0, count: 16)
        for i in 0..<8 { words[2 + i] = UInt16(serialBytes[i * 2]) << 8 | UInt16(serialBytes[i * 2 + 1]) }
        words[10] = UInt16(firmware >> 16)
        words[11] = UInt16(truncatingIfNeeded: firmware)
        let clock = UInt32(clamping: deviceMillisecondsLocked / 1000)
        words[12] = UInt16(clock >> 16)
        words[13] = UInt16(truncatingIfNeeded: clock)
        words[14] = (tamper ? 1 : 0) | (hardwareFault ? 2 : 0) | (log.nearlyFull ? 4 : 0) | (clockSynchronised ? 0 : 8)
        settleLocked()
        for i in 0..<10 { words[20 + i] = state[i] }
        // HR 30 reads 0 once a command has run; 31–33 keep the last one written, 34–35 are last_command_id.
        words[31] = commandArgument
        words[32] = UInt16(lastCommandID >> 16)
        words[33] = UInt16(truncatingIfNeeded: lastCommandID)
        words[34] = UInt16(lastCommandID >> 16)
        words[35] = UInt16(truncatingIfNeeded: lastCommandID)
    }

    private var currentFaults: DeviceFaults { lock.withLock { activeFaults } }

    private func fillEventBlockLocked(_ words: UnsafeMutableBufferPointer<UInt16>) {
        eventBlockReads += 1
        var window = log.windowSeqs(limit: activeFaults.windowGap ? 4 : 3)
        if activeFaults.windowGap, !window.isEmpty { window = (window.lowerBound + 1)..<window.upperBound }
        words[0] = UInt16(log.head >> 16)
        words[1] = UInt16(truncatingIfNeeded: log.head)
        words[2] = UInt16(log.tail >> 16)
        words[3] = UInt16(truncatingIfNeeded: log.tail)
        words[4] = activeFaults.flappingBootID ? bootID &+ UInt16(truncatingIfNeeded: eventBlockReads) : bootID
        words[5] = activeFaults.garbledWindowCount ?? UInt16(window.count)
        let ack = ackRegisterOverride ?? log.ack
        words[6] = UInt16(ack >> 16)
        words[7] = UInt16(truncatingIfNeeded: ack)
        words[8] = log.unread
        words[9] = (log.overwritten ? 1 : 0) | (log.nearlyFull ? 2 : 0) | (clockSynchronised ? 0 : 4)
        for (i, seq) in window.enumerated() {
            log.withEvent(seq: seq) { $0.writeRegisters(to: UnsafeMutableBufferPointer(rebasing: words[(10 + i * LoggedEvent.registerCount)...])) }
        }
    }
}
