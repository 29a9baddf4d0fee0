import AccessModel
import DeviceProfiles
import Foundation

/// One simulated access device: its identity, state, command block and event log behind one lock.
///
/// `@unchecked Sendable` is safe because every stored mutable property is read and written only while
/// holding `lock`, and the immutable ones (`kind`, `unit`, `firmware`) are `let`s of Sendable types.
public final class SimulatedDevice: @unchecked Sendable {
    public let kind: DeviceKind
    public let unit: UInt8
    /// The identity block's serial.
    public var serial: String { locked { serialLocked } }
    /// Firmware version as the register holds it: major << 16 | minor.
    public let firmware: UInt32
    /// Time the device takes to answer a request, before any injected delay.
    public let responseLatencyMilliseconds: Int

    let lock = NSLock()
    var serialLocked: String
    var log: EventLog
    var bootID: UInt16
    var state: [UInt16]
    var clockOffsetMilliseconds: Int64 = 0
    var clockSynchronised = true
    var tamper = false
    var hardwareFault = false
    var commandArgument: UInt16 = 0
    /// HR 34–35: the id of the last command executed; a write repeating it is not executed again.
    var lastCommandID: UInt32 = 0
    /// Commands actually executed (not counting repeated ids), for tests that check "exactly once".
    var executedCommands = 0
    /// Valid command-block writes received, repeated ids included: how many writes reached the device.
    var commandWrites = 0
    var requests = 0
    /// How long an `open` keeps a face door's lock released.
    let lockReleaseMilliseconds: Int
    var lockReleasedUntil: Int64?
    var elevatorTrip: ElevatorTrip?
    var activeFaults: DeviceFaults
    var random: SeededRandom
    var requestsSinceDrop = 0
    var dropRequested = false
    var ackRefusalsLeft = 0
    /// What `ack_seq` reads as after a function 23 write under the fault `function23SkipsLog`, the log's own ack left
    /// behind; nil otherwise. A function 16 write of `ack_seq` or a restart clears it.
    var ackRegisterOverride: UInt32?
    /// Function 23 requests answered (executed or refused with an exception by the device itself).
    var function23Count = 0
    var eventBlockReads = 0
    /// The tables of a map-2 device (SPEC 3.5); nil for the event-log devices of map 1.
    var mapTables: SimulatedMap?
    /// The map-2 profile served, or nil for a map-1 device of `kind`.
    public let mapProfileName: String?

    public init(kind: DeviceKind, unit: UInt8 = 1, serial: String? = nil, firmware: UInt32 = 1 << 16,
                capacity: Int = 1000, bootID: UInt16 = 1, responseLatencyMilliseconds: Int = 0,
                faults: DeviceFaults = .none, seed: UInt64 = 1, lockReleaseMilliseconds: Int = 5_000,
                map: SimulatedMap? = nil) {
        self.lockReleaseMilliseconds = lockReleaseMilliseconds
        self.kind = kind
        mapTables = map
        mapProfileName = map?.profileName
        self.unit = unit
        serialLocked = serial ?? kind.defaultSerial(unit: unit)
        self.firmware = firmware
        self.responseLatencyMilliseconds = responseLatencyMilliseconds
        self.log = EventLog(capacity: capacity)
        self.bootID = bootID == 0 ? 1 : bootID
        self.state = kind.initialState
        self.activeFaults = faults
        self.random = SeededRandom(seed: seed ^ UInt64(unit) << 32 ^ UInt64(kind.rawValue))
    }

    /// A device without an event log whose tables are laid out by a map-2 profile.
    public convenience init(profile: DeviceProfile, unit: UInt8 = 1, responseLatencyMilliseconds: Int = 0,
                            faults: DeviceFaults = .none, seed: UInt64 = 1) {
        self.init(kind: .faceDoor, unit: unit, serial: profile.name, responseLatencyMilliseconds: responseLatencyMilliseconds,
                  faults: faults, seed: seed, map: SimulatedMap(profile: profile))
    }

    /// The controller is swapped for another one with `serial` that carries on with the same boot id and log, its
    /// seqs continuing upward, without an outage a gateway could see (a technician's clone of the old one).
    public func replaceController(serial: String) {
        locked { serialLocked = serial }
    }

    /// What the device is: its map-2 profile, or its map-1 kind.
    public var name: String { mapProfileName ?? kind.name }

    /// Reads a map-2 device's table (functions 01–04).
    func readMap(_ table: ModbusTable, address: Int, count: Int) throws(ModbusException) -> [UInt16] {
        try locked { () throws(ModbusException) -> [UInt16] in
            guard let tables = mapTables else { throw .illegalFunction("this device has no \(table.rawValue)") }
            return try tables.read(table, address: address, count: count)
        }
    }

    /// Writes a map-2 device's coils or holding registers (functions 05, 06, 15, 16).
    func writeMap(_ table: ModbusTable, address: Int, values: [UInt16], function: UInt8) throws(ModbusException) {
        try locked { () throws(ModbusException) in
            guard mapTables != nil else { throw .illegalFunction("this device has no \(table.rawValue)") }
            try mapTables!.write(table, address: address, values: values, function: function)
        }
    }

    /// Every coil and holding-register write a map-2 device received, in order.
    public var mapWrites: [MapWrite] { locked { mapTables?.writes ?? [] } }

    /// Records an event with the device clock's current time and returns its seq.
    @discardableResult
    public func record(code: UInt16, point: Int16 = 0, direction: UInt8 = 0, value: UInt32 = 0,
                       extra: UInt32 = 0, subject: String = "") -> UInt32 {
        let bytes = (try? kind.subjectEncoding.encode(subject, length: 40)) ?? [UInt8](repeating: 0, count: 40)
        return lock.withLock {
            recordLocked(code: code, point: point, direction: direction, value: value, extra: extra, subject: bytes)
        }
    }

    func recordLocked(code: UInt16, point: Int16, direction: UInt8, value: UInt32, extra: UInt32,
                      subject: [UInt8]) -> UInt32 {
        let now = deviceMillisecondsLocked
        let event = LoggedEvent(
            seq: 0, time: UInt32(clamping: now / 1000), millis: UInt16(now % 1000), code: code, point: point,
            direction: direction, flags: clockSynchronised ? 0 : 1, value: value, extra: extra, subject: subject)
        return log.append(event)
    }

    /// The device clock in milliseconds since the Unix epoch: the host clock plus the device's offset.
    var deviceMillisecondsLocked: Int64 {
        max(0, Timestamp.now.millisecondsSinceEpoch + clockOffsetMilliseconds)
    }

    /// Restarts the device as a firmware update would: new boot_id, log cleared, seqs from 1, code 33 recorded.
    public func reboot() {
        lock.withLock {
            bootID = bootID == UInt16.max ? 1 : bootID + 1
            log.clear()
            ackRegisterOverride = nil
            state = kind.initialState
            _ = recordLocked(code: 33, point: 0, direction: 0, value: 0, extra: 0,
                             subject: [UInt8](repeating: 0, count: 40))
        }
    }

    /// Records `capacity + extra` events without acknowledgement so the log overwrites unread events.
    public func overflowLog(by extra: Int = 1) {
        let count = lock.withLock { log.capacity } + max(1, extra)
        for i in 0..<count { record(code: 1, point: 1, direction: 1, value: 900, subject: "P-\(i % 10_000)") }
    }

    /// The faults currently injected; assign to change them while the device is being served.
    public var faults: DeviceFaults {
        get { lock.withLock { activeFaults } }
        set { lock.withLock { activeFaults = newValue; requestsSinceDrop = 0 } }
    }

    /// Whether the log frees records once acknowledged, showing `tail_seq = head_seq + 1` when it holds nothing
    /// (SPEC 3.4); by default it keeps released records until overwritten.
    public var freesAcknowledged: Bool {
        get { lock.withLock { log.freesAcknowledged } }
        set { lock.withLock { log.freesAcknowledged = newValue } }
    }

    /// Makes the next `count` writes of `ack_seq` answer exception 03 without acknowledging anything, as a
    /// write garbled on the way would.
    public func refuseAcks(_ count: Int) {
        lock.withLock { ackRefusalsLeft = count }
    }

    /// Makes the next request to this device close its TCP connection.
    public func dropConnectionOnNextRequest() {
        lock.withLock { dropRequested = true }
    }

    /// Sets the device clock `offsetSeconds` away from the host clock, synchronised or not.
    public func setClock(offsetSeconds: Int64, synchronised: Bool) {
        lock.withLock {
            clockOffsetMilliseconds = offsetSeconds * 1000
            clockSynchronised = synchronised
        }
    }

    /// Sets the tamper (bit0) and hardware fault (bit1) health bits.
    public func setHealth(tamper: Bool, hardwareFault: Bool) {
        lock.withLock {
            self.tamper = tamper
            self.hardwareFault = hardwareFault
        }
    }

    /// Sets one register of the state block, `register` counted from 20.
    public func setState(register: Int, to value: UInt16) {
        precondition((20...29).contains(register), "state registers are 20–29")
        lock.withLock { state[register - 20] = value }
    }

    /// The state block HR 20–29.
    public var stateRegisters: [UInt16] { lock.withLock { state } }

    /// A consistent snapshot of the event log and boot id.
    public var logStatus: (head: UInt32, tail: UInt32, ack: UInt32, bootID: UInt16, overwritten: Bool) {
        lock.withLock { (log.head, log.tail, log.ack, bootID, log.overwritten) }
    }

    /// Function 23 (Read/Write Multiple Registers) requests the device answered, executed or refused.
    public var function23Requests: Int { lock.withLock { function23Count } }

    /// The event with `seq` if the log still holds it.
    public func event(seq: UInt32) -> LoggedEvent? { lock.withLock { log.event(seq: seq) } }

    /// Runs `body` holding the lock; unlike `NSLock.withLock` it keeps a typed throw.
    func locked<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Decides what happens to the next request addressed to this device, of `function` when known.
    public func decideFault(function: UInt8? = nil, address: UInt16? = nil) -> FaultDecision {
        decideFaultAndFaults(function: function, address: address).decision
    }

    /// `decideFault()` and the faults it decided by, under one lock (the TCP server needs both for every request).
    func decideFaultAndFaults(function: UInt8? = nil, address: UInt16? = nil) -> (decision: FaultDecision, faults: DeviceFaults) {
        lock.withLock { (decideFaultLocked(function: function, address: address), activeFaults) }
    }

    private func decideFaultLocked(function: UInt8?, address: UInt16?) -> FaultDecision {
        let f = activeFaults
        requests += 1
        if f.ignoreFunction23, function == 0x17 { return .noReply }
        if f.ignoreCommandWrites, function == 0x06 || function == 0x10, let address, (30...35).contains(address) { return .noReply }
        if dropRequested {
            dropRequested = false
            return .dropConnection
        }
        if let n = f.dropConnectionAfter, n > 0 {
            requestsSinceDrop += 1
            if requestsSinceDrop >= n {
                requestsSinceDrop = 0
                return .dropConnection
            }
        }
        if random.chance(f.noReplyProbability) { return .noReply }
        let delay = responseLatencyMilliseconds + f.delayMilliseconds
        if let code = f.exceptionCode, random.chance(f.exceptionProbability) {
            return .exception(code, delayMilliseconds: delay)
        }
        return .answer(delayMilliseconds: delay, corruptCRC: random.chance(f.corruptCRCProbability))
    }
}

/// A simulated car travelling to a called floor.
struct ElevatorTrip {
    static let millisecondsPerFloor: Int64 = 500
    var from: Int16
    var to: Int16
    var started: Int64
}

extension SimulatedDevice {
    /// Commands executed so far (a repeated command id does not count): what "executed once" is checked by.
    public var executedCommandCount: Int { lock.withLock { executedCommands } }
    /// Valid command-block writes received, a repeated command id included.
    public var commandWriteCount: Int { lock.withLock { commandWrites } }
    /// Requests addressed to this device so far, answered or not: how much of its bus it got.
    public var requestCount: Int { lock.withLock { requests } }
    /// HR 34–35 as the device holds it.
    public var lastExecutedCommandID: UInt32 { lock.withLock { lastCommandID } }
}
