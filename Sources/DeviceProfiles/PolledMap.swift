import AccessModel

/// The Modbus data tables a map-2 profile reads, with the function that reads each.
public enum ModbusTable: String, Sendable, CaseIterable {
    case coils
    case discreteInputs = "discrete_inputs"
    case holding
    case input

    /// The read function: 01, 02, 03 or 04.
    public var function: UInt8 {
        switch self {
        case .coils: 1
        case .discreteInputs: 2
        case .holding: 3
        case .input: 4
        }
    }

    /// Coils and discrete inputs hold bits; the others 16-bit registers.
    public var holdsBits: Bool { self == .coils || self == .discreteInputs }

    /// The most one request may read: 2000 bits or 125 registers.
    public var maximumRead: Int { holdsBits ? 2000 : 125 }
}

/// The map-2 part of a profile (SPEC 3.5): blocks of any table read into one image of words, named fields
/// inside them, the fields published as state, and the event rules the engine interprets.
///
/// The image is every block's content one after the other: a register block takes its registers, a bit block
/// its bits packed 16 to a word (bit i of the block is bit i % 16 of word i / 16). The rules, the state and the
/// journal's baseline all work on the image, and a derived event carries the image it was made from.
public struct PolledMap: Sendable {
    public var blocks: [MapBlock]
    public var fields: [MapField]
    /// Indexes of the fields published as retained state, in order.
    public var state: [Int]
    public var rules: [MapRule]
    /// The requests one poll makes: blocks of a table merged where the profile allows.
    public var reads: [MapRead]
    /// Words of the image.
    public var imageWords: Int
    /// The device's local time offset from UTC, for `bcd_time` fields; a device's configuration may override it.
    public var utcOffsetSeconds: Int
    /// The commands, as writes of a coil or holding register with an optional pulse, in file order.
    public var commands: [MapCommand]

    public init(blocks: [MapBlock] = [], fields: [MapField] = [], state: [Int] = [], rules: [MapRule] = [], reads: [MapRead] = [],
                imageWords: Int = 0, utcOffsetSeconds: Int = 0, commands: [MapCommand] = []) {
        self.blocks = blocks
        self.fields = fields
        self.state = state
        self.rules = rules
        self.reads = reads
        self.imageWords = imageWords
        self.utcOffsetSeconds = utcOffsetSeconds
        self.commands = commands
    }

    public func field(named name: String) -> Int? { fields.firstIndex { $0.name == name } }

    /// Identifies the image layout and rules, so a baseline saved under another version of the profile is not
    /// compared with the present one.
    public var fingerprint: String {
        var text = "\(imageWords)"
        for field in fields { text += "|\(field.name):\(field.block):\(field.offset):\(field.type.rawValue):\(field.bitCount)" }
        for rule in rules { text += "|\(rule.trigger)" }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return String(hash, radix: 16)
    }
}

/// One block: a run of one table read as a unit (possibly merged with its neighbours into one request).
public struct MapBlock: Sendable {
    public var name: String
    public var table: ModbusTable
    public var address: UInt16
    /// Registers or bits.
    public var count: Int
    /// Where its content starts in the image, in words.
    public var imageOffset: Int
    /// Where it is written in the profile.
    public var line: Int

    /// Words it takes in the image.
    public var imageWords: Int { table.holdsBits ? (count + 15) / 16 : count }
}

/// One request of a poll and where its answer goes in the image.
public struct MapRead: Sendable, Equatable {
    public var table: ModbusTable
    public var address: UInt16
    /// Registers or bits.
    public var count: Int
    /// The blocks it covers: block index and the block's first register or bit within the request.
    public var parts: [Part]

    public struct Part: Sendable, Equatable {
        public var block: Int
        public var start: Int

        public init(block: Int, start: Int) {
            self.block = block
            self.start = start
        }
    }

    public init(table: ModbusTable, address: UInt16, count: Int, parts: [Part]) {
        self.table = table
        self.address = address
        self.count = count
        self.parts = parts
    }
}

/// A named value inside a map-2 block.
public struct MapField: Sendable {
    public enum ValueType: String, Sendable, CaseIterable {
        case u16, i16, u32, i32, u64, i64, float32, bcd16, bcd32, bool, bit, bits, string
        case bcdTime = "bcd_time"
    }

    public enum Presentation: Sendable {
        case number
        case words([Int64: String])
        case flags([Int: String])
        /// The number as decimal text (card numbers: a u64 above 2⁶³ or a leading zero that matters).
        case decimal
        case unixTime
    }

    public var name: String
    public var block: Int
    /// Register offset (register blocks) or bit offset (bit blocks) inside the block.
    public var offset: Int
    public var type: ValueType
    /// `bits` only: how many bits, read least significant first.
    public var bitCount: Int
    public var byteOrder: WordLayout.ByteOrder
    public var wordOrder: WordLayout.WordOrder
    /// Strings: bytes.
    public var length: Int
    public var encoding: TextEncoding
    public var shift: Int
    public var mask: UInt64?
    /// `value * scale + add`.
    public var scale: Double?
    public var add: Double?
    public var presentation: Presentation
    /// `bcd_time`: one character per BCD digit (`Y M D h m s`, `_` ignored), first digit in the high nibble.
    public var timePattern: [Character]
    /// Where the field is defined, for problems found later (rules naming it).
    public var line: Int

    /// Registers (register blocks) or bits (bit blocks) the field spans.
    public var span: Int {
        switch type {
        case .u16, .i16, .bcd16, .bool: 1
        case .u32, .i32, .float32, .bcd32: 2
        case .u64, .i64: 4
        case .bit: 1
        case .bits: bitCount
        case .string: (length + 1) / 2
        case .bcdTime: (timePattern.count + 3) / 4
        }
    }

    /// Whether the field reads as a whole number that rules can compare and count.
    public var isInteger: Bool { type != .float32 && type != .string && type != .bcdTime }

    /// Whether the number is signed (for `from` values carried in 32 bits).
    public var isSigned: Bool { type == .i16 || type == .i32 || type == .i64 }

    /// The number of distinct values a counter of this field takes before it wraps; nil for 2⁶⁴.
    public var modulus: UInt64? {
        if let mask, shift == 0, mask & (mask &+ 1) == 0 { return mask == UInt64.max ? nil : mask + 1 }
        switch type {
        case .u16, .i16, .bool: return 1 << 16
        case .u32, .i32: return 1 << 32
        case .bcd16: return 10_000
        case .bcd32: return 100_000_000
        case .bit: return 2
        case .bits: return bitCount >= 64 ? nil : 1 << UInt64(bitCount)
        default: return nil
        }
    }
}

/// Which values a change rule's `from`, `to` or guard accepts.
public enum ValueMatch: Sendable, Equatable, CustomStringConvertible {
    case any
    case nonzero
    case values([Int64])

    public func matches(_ value: Int64) -> Bool {
        switch self {
        case .any: true
        case .nonzero: value != 0
        case let .values(list): list.contains(value)
        }
    }

    public var description: String {
        switch self {
        case .any: "any"
        case .nonzero: "nonzero"
        case let .values(list): list.map(String.init).joined(separator: ",")
        }
    }
}

/// Where a derived event's data field comes from.
public enum MapSource: Sendable, Equatable {
    /// A field of the image, as presented (enum words, scaled numbers, times).
    case field(Int)
    /// The changed value before the change.
    case from
    /// How much a counter grew.
    case count
}

/// What a rule emits: the normalised type, alarm flag, constant and image fields; all data.
public struct MapOutcome: Sendable {
    public var type: String
    public var alarm: Bool
    public var constants: [(String, JSONValue)]
    public var fields: [(String, MapSource)]
}

/// One event rule of a map-2 profile.
public struct MapRule: Sendable {
    public enum Trigger: Sendable, CustomStringConvertible {
        /// A field (or one bit of it) changed between two polls from a value `from` accepts to one `to` accepts.
        case change(field: Int, bit: Int?, from: ValueMatch, to: ValueMatch)
        /// A counter grew: one event with `count`; a drop larger than `maxStep` backwards is a reset.
        case counter(field: Int, maxStep: UInt64)
        /// A latest-event snapshot with its own counter: one event from the snapshot, the rest reported lost.
        case latest(counter: Int, code: Int?, time: Int?, maxStep: UInt64)

        public var description: String {
            switch self {
            case let .change(field, bit, from, to): "change \(field).\(bit ?? -1) \(from)>\(to)"
            case let .counter(field, step): "counter \(field) \(step)"
            case let .latest(counter, code, time, step): "latest \(counter) \(code ?? -1) \(time ?? -1) \(step)"
            }
        }

        /// The field whose value the rule follows.
        public var watched: Int {
            switch self {
            case let .change(field, _, _, _), let .counter(field, _): field
            case let .latest(counter, _, _, _): counter
            }
        }
    }

    public var trigger: Trigger
    /// Conditions on the present values of other fields, all of which must hold.
    public var guards: [(field: Int, match: ValueMatch)]
    /// The event for `change` and `counter`, and for `latest` without `codes`.
    public var outcome: MapOutcome?
    /// `latest` with `code`: the event by the snapshot's code; a code without an entry is `device.unknown_event`.
    public var codes: [Int64: MapOutcome]
    /// Where the rule is written.
    public var line: Int
}

extension PolledMap {
    /// Makes every request of one poll and assembles the image: `registers` reads a register request (holding or
    /// input) into a buffer of `count` words, `bits` a coil or discrete-input request into `count` bytes of 0/1.
    public func readImage<E: Error>(registers: (MapRead, UnsafeMutablePointer<UInt16>) throws(E) -> Void,
                                    bits: (MapRead, UnsafeMutablePointer<UInt8>) throws(E) -> Void) throws(E) -> [UInt16] {
        var image = [UInt16](repeating: 0, count: imageWords)
        let words = UnsafeMutablePointer<UInt16>.allocate(capacity: 125)
        let flags = UnsafeMutablePointer<UInt8>.allocate(capacity: 2000)
        defer {
            words.deallocate()
            flags.deallocate()
        }
        for read in reads {
            if read.table.holdsBits {
                flags.initialize(repeating: 0, count: read.count)
                try bits(read, flags)
                for part in read.parts {
                    let block = blocks[part.block]
                    for i in 0..<block.count where flags[part.start + i] != 0 {
                        image[block.imageOffset + i / 16] |= 1 << UInt16(i % 16)
                    }
                }
            } else {
                words.initialize(repeating: 0, count: read.count)
                try registers(read, words)
                for part in read.parts {
                    let block = blocks[part.block]
                    for i in 0..<block.count { image[block.imageOffset + i] = words[part.start + i] }
                }
            }
        }
        return image
    }
}
