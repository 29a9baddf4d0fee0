import AccessModel
import DeviceProfiles
import Foundation

/// The tables of a device without an event log, served from its map-2 profile (SPEC 3.5): whatever the
/// profile's blocks cover answers functions 01–04, any other address exception 02. Which device it is lives
/// entirely in the profile and the scenario's actions; there is no per-kind code.
public struct SimulatedMap: Sendable {
    public let profileName: String
    public let map: PolledMap
    /// The registers and bits, laid out as the gateway's image.
    public var values: MapWriting
    /// Every coil and holding-register write received, in order (functions 05, 06, 15, 16; one entry per address).
    public var writes: [MapWrite] = []

    public init(profile: DeviceProfile) {
        profileName = profile.name
        map = profile.map ?? PolledMap()
        values = MapWriting(map: map)
    }

    /// Reads `count` registers (functions 03, 04) or bits (01, 02, one word 0/1 each) of `table`.
    public func read(_ table: ModbusTable, address: Int, count: Int) throws(ModbusException) -> [UInt16] {
        guard (1...table.maximumRead).contains(count) else {
            throw .illegalDataValue("cannot read \(count) \(table.holdsBits ? "bits" : "registers") (1–\(table.maximumRead))")
        }
        var out: [UInt16] = []
        out.reserveCapacity(count)
        for at in address..<(address + count) {
            guard let block = map.blocks.first(where: { $0.table == table && at >= Int($0.address) && at < Int($0.address) + $0.count }) else {
                throw .illegalDataAddress("\(table.rawValue) \(at) is not mapped")
            }
            let offset = at - Int(block.address)
            if table.holdsBits {
                out.append(values.image[block.imageOffset + offset / 16] >> UInt16(offset % 16) & 1)
            } else {
                out.append(values.image[block.imageOffset + offset])
            }
        }
        return out
    }
}

/// One write a simulated map-2 device received: which coil or register took which value, with which function.
public struct MapWrite: Sendable, Equatable {
    public var table: ModbusTable
    public var address: Int
    public var value: UInt16
    public var function: UInt8

    public init(table: ModbusTable, address: Int, value: UInt16, function: UInt8) {
        self.table = table
        self.address = address
        self.value = value
        self.function = function
    }
}

extension SimulatedMap {
    /// Writes coils (a value 0/1 each) or holding registers that a command of the profile writes, recording each;
    /// any other address is exception 02 and nothing is written (the rest of the device stays read-only).
    public mutating func write(_ table: ModbusTable, address: Int, values newValues: [UInt16], function: UInt8) throws(ModbusException) {
        guard table == .coils || table == .holding else { throw .illegalFunction("\(table.rawValue) cannot be written") }
        var targets: [(word: Int, bit: Int?)] = []
        for at in address..<(address + newValues.count) {
            guard map.commands.contains(where: { $0.table == table && Int($0.address) == at }),
                  let block = map.blocks.first(where: { $0.table == table && at >= Int($0.address) && at < Int($0.address) + $0.count }) else {
                throw .illegalDataAddress("\(table.rawValue) \(at) is not written by a command of the profile")
            }
            let offset = at - Int(block.address)
            targets.append(table.holdsBits ? (block.imageOffset + offset / 16, offset % 16) : (block.imageOffset + offset, nil))
        }
        for (i, target) in targets.enumerated() {
            if let bit = target.bit {
                let mask = UInt16(1) << UInt16(bit)
                values.image[target.word] = newValues[i] != 0 ? values.image[target.word] | mask : values.image[target.word] & ~mask
            } else {
                values.image[target.word] = newValues[i]
            }
            writes.append(MapWrite(table: table, address: address + i, value: newValues[i], function: function))
        }
    }
}

/// One thing a simulated map-2 device does again and again: passages at a rate (`add`), faults that come and go
/// (`set` with `for`), card swipes (`add` to the event counter, `set` the latest-event fields, `stamp` its time),
/// and bursts faster than the poll (`burst`).
public struct MapAction: Sendable {
    public enum Value: Sendable, Equatable {
        case number(Int64)
        /// A fresh random number (1...10¹²) each time: card numbers.
        case random
    }

    public var everyMilliseconds: Int
    public var add: [(field: String, by: Int64)] = []
    public var set: [(field: String, value: Value)] = []
    /// A `bcd_time` (or unix-time) field set to the device's present time.
    public var stamp: String?
    /// Put the `set` fields back this long after setting them.
    public var holdMilliseconds: Int?
    /// How many times the action happens at once.
    public var burst = 1

    public init(everyMilliseconds: Int, add: [(field: String, by: Int64)] = [], set: [(field: String, value: Value)] = [],
                stamp: String? = nil, holdMilliseconds: Int? = nil, burst: Int = 1) {
        self.everyMilliseconds = everyMilliseconds
        self.add = add
        self.set = set
        self.stamp = stamp
        self.holdMilliseconds = holdMilliseconds
        self.burst = burst
    }
}

extension SimulatedDevice {
    /// Changes the served tables under the device's lock (tests and scenarios).
    public func updateMap(_ body: (inout MapWriting) -> Void) {
        lock.withLock {
            guard mapTables != nil else { return }
            body(&mapTables!.values)
        }
    }

    /// The present value of a numeric field, as the gateway would read it.
    public func mapValue(_ field: String) -> Int64? {
        lock.withLock {
            guard let tables = mapTables, let index = tables.map.field(named: field) else { return nil }
            return MapReading(map: tables.map, image: tables.values.image).raw(index)
        }
    }

    /// Performs `action` once (`burst` times); returns the values to put back when it holds for a while.
    func perform(_ action: MapAction) -> [(String, Int64)] {
        lock.withLock {
            guard var tables = mapTables else { return [] }
            let reading = { (name: String) -> Int64 in
                tables.map.field(named: name).flatMap { MapReading(map: tables.map, image: tables.values.image).raw($0) } ?? 0
            }
            var previous: [(String, Int64)] = []
            for round in 0..<max(1, action.burst) {
                for (field, by) in action.add {
                    let index = tables.map.field(named: field)!
                    let value = reading(field) &+ by
                    let modulus = tables.map.fields[index].modulus
                    tables.values.set(field, modulus.map { Int64(bitPattern: UInt64(bitPattern: value) % $0) } ?? value)
                }
                for (field, value) in action.set {
                    if round == 0 { previous.append((field, reading(field))) }
                    switch value {
                    case let .number(n): tables.values.set(field, n)
                    case .random: tables.values.set(field, Int64(random.next() % 1_000_000_000_000) + 1)
                    }
                }
                if let stamp = action.stamp, let index = tables.map.field(named: stamp) {
                    let now = Timestamp(millisecondsSinceEpoch: deviceMillisecondsLocked)
                    if tables.map.fields[index].type == .bcdTime { tables.values.set(stamp, time: now) } else { tables.values.set(stamp, now.seconds) }
                }
            }
            mapTables = tables
            return action.holdMilliseconds == nil ? [] : previous
        }
    }

    /// Puts back what a held action changed.
    func restore(_ values: [(String, Int64)]) {
        updateMap { tables in for (field, value) in values { tables.set(field, value) } }
    }
}

/// Runs the actions of every map-2 device from one thread.
///
/// `@unchecked Sendable` is safe because `stopping` is only touched under `condition`, and the schedule only by
/// the driver thread.
public final class MapActionDriver: @unchecked Sendable {
    private struct Slot {
        let device: SimulatedDevice
        let action: MapAction
        var nextAt: UInt64
        var restoreAt: UInt64?
        var restore: [(String, Int64)] = []
    }

    private var slots: [Slot]
    private let condition = NSCondition()
    private var stopping = false
    private var thread: JoinableThread?

    public init(_ devices: [(SimulatedDevice, [MapAction])]) {
        let start = PreciseClock.now
        slots = devices.flatMap { device, actions in
            actions.filter { $0.everyMilliseconds > 0 }.map {
                Slot(device: device, action: $0, nextAt: start + UInt64($0.everyMilliseconds) * 1_000_000)
            }
        }
    }

    public func start() {
        guard !slots.isEmpty else { return }
        thread = JoinableThread { [self] in run() }
    }

    public func stop() {
        condition.withLock {
            stopping = true
            condition.broadcast()
        }
        thread?.join()
        thread = nil
    }

    private func run() {
        while true {
            let now = PreciseClock.now
            var wake = now + 1_000_000_000
            for i in slots.indices {
                if let at = slots[i].restoreAt, at <= now {
                    slots[i].device.restore(slots[i].restore)
                    slots[i].restoreAt = nil
                }
                if slots[i].nextAt <= now {
                    slots[i].restore = slots[i].device.perform(slots[i].action)
                    if let hold = slots[i].action.holdMilliseconds { slots[i].restoreAt = now + UInt64(hold) * 1_000_000 }
                    slots[i].nextAt += UInt64(slots[i].action.everyMilliseconds) * 1_000_000
                    if slots[i].nextAt <= now { slots[i].nextAt = now + UInt64(slots[i].action.everyMilliseconds) * 1_000_000 }
                }
                wake = min(wake, slots[i].nextAt, slots[i].restoreAt ?? UInt64.max)
            }
            let deadline = Date(timeIntervalSinceNow: Double(wake - min(wake, PreciseClock.now)) / 1e9)
            let stop = condition.withLock { () -> Bool in
                if !stopping { _ = condition.wait(until: deadline) }
                return stopping
            }
            if stop { return }
        }
    }
}
