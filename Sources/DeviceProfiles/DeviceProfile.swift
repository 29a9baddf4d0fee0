import AccessModel

/// A device's register map and event table as data: what the gateway reads, and what each record means.
/// A new vendor's device is a new profile file, not new code (see `Devices/README.md`).
public struct DeviceProfile: Sendable {
    /// The profile's name, such as `face-door`.
    public var name: String
    /// The device kind reported in events (`data.kind`).
    public var kind: String
    public var description: String
    /// The value the identity block's `kind` field must hold; nil when the device has none.
    public var kindCode: Int64?
    public var layout: WordLayout
    public var identity: RegisterBlock?
    /// The register holding the writable clock (u32 Unix seconds, written with function 16).
    public var clockRegister: UInt16?
    public var state: RegisterBlock?
    public var commands: CommandBlock?
    /// The event log; nil for a state-only device.
    public var eventLog: EventLogLayout?
    public var events: [UInt16: EventRule]
    /// Map version 2 (SPEC 3.5): blocks of any table, state fields and event rules; nil for a map-1 profile.
    public var map: PolledMap?
    /// The file the profile was loaded from.
    public var file: String
}

/// A contiguous block of holding registers read with one function 03 request.
public struct RegisterBlock: Sendable {
    public var address: UInt16
    public var count: UInt16
    public var fields: [FieldLayout]
}

/// A named value inside a block or record, at a register offset.
public struct FieldLayout: Sendable {
    public enum ValueType: String, Sendable, CaseIterable {
        case u16, i16, u32, i32, bool, string
    }

    /// How the value is shown.
    public enum Presentation: Sendable {
        case number
        /// Multiplied by a factor: a float.
        case scaled(Double)
        /// A code mapped to a word; codes outside the table become `unknown_<n>`.
        case words([Int64: String])
        /// A bit set as the names of the bits that are set.
        case flags([Int: String])
        /// `major << 16 | minor` as `major.minor`.
        case version
        /// Unix seconds as an RFC 3339 time.
        case unixTime
    }

    public var name: String
    public var offset: UInt16
    public var type: ValueType
    /// For strings: the length in bytes (two per register).
    public var length: Int
    public var encoding: TextEncoding
    /// Bits kept after shifting (`mask: 0xFF` keeps the low byte).
    public var mask: UInt32?
    public var shift: Int
    public var presentation: Presentation

    /// Registers the field spans.
    public var registerCount: Int {
        switch type {
        case .u16, .i16, .bool: 1
        case .u32, .i32: 2
        case .string: (length + 1) / 2
        }
    }
}

/// Byte order inside a register and register order of 32-bit values.
public struct WordLayout: Sendable, Equatable {
    public enum ByteOrder: String, Sendable, CaseIterable { case big, little }
    public enum WordOrder: String, Sendable, CaseIterable {
        case highFirst = "high_first"
        case lowFirst = "low_first"
    }

    public var byteOrder: ByteOrder
    public var wordOrder: WordOrder

    public init(byteOrder: ByteOrder, wordOrder: WordOrder) {
        self.byteOrder = byteOrder
        self.wordOrder = wordOrder
    }

    public static let modbusStandard = WordLayout(byteOrder: .big, wordOrder: .highFirst)
}

/// The command block (SPEC 3.3): code, argument and a u32 command id written with one function 16 at
/// `address`; the device keeps the last executed id, read-only, at `address + 4` (`last_command_id`).
public struct CommandBlock: Sendable {
    public var address: UInt16
    /// The commands by name (`open`, `close`, `call`), in file order.
    public var commands: [CommandDefinition]

    public func command(named name: String) -> CommandDefinition? { commands.first { $0.name == name } }

    /// The register of `last_command_id` (u32, high word first).
    public var lastCommandIDAddress: UInt16 { address + 4 }
}

/// One command a device understands: its name in topics and requests, its code, and its one argument.
public struct CommandDefinition: Sendable, Equatable {
    public var name: String
    public var code: UInt16
    public var argument: CommandArgument?

    public init(name: String, code: UInt16, argument: CommandArgument? = nil) {
        self.name = name
        self.code = code
        self.argument = argument
    }

    /// The argument register's value for request `args`, or why not: an unknown key, a value that is not
    /// a whole number in range, a missing argument without a default.
    public func argumentWord(for args: [(String, JSONValue)]) -> Result<UInt16, CommandArgument.Problem> {
        for (key, _) in args where key != argument?.name { return .failure(.unknown(key)) }
        guard let argument else { return .success(0) }
        let value: Int64
        switch args.first(where: { $0.0 == argument.name })?.1 {
        case let .int(n)?: value = n
        case let .double(d)? where d == d.rounded() && abs(d) < 1e9: value = Int64(d)
        case nil:
            guard let fallback = argument.defaultValue else { return .failure(.missing(argument.name)) }
            value = fallback
        default: return .failure(.outOfRange(argument.name))
        }
        guard argument.range.contains(value) else { return .failure(.outOfRange(argument.name)) }
        return .success(argument.signed ? UInt16(bitPattern: Int16(value)) : UInt16(value))
    }
}

/// A command's argument: its name in `args`, the register's type and the values a device accepts.
public struct CommandArgument: Sendable, Equatable {
    public enum Problem: Error, Equatable, Sendable {
        case unknown(String), missing(String), outOfRange(String)
    }

    public var name: String
    /// i16 (floors, basements negative) or u16.
    public var signed: Bool
    public var range: ClosedRange<Int64>
    public var defaultValue: Int64?

    public init(name: String, signed: Bool, range: ClosedRange<Int64>, defaultValue: Int64? = nil) {
        self.name = name
        self.signed = signed
        self.range = range
        self.defaultValue = defaultValue
    }
}

/// Where the event log's header, acknowledgement register and record window are, and the record layout.
public struct EventLogLayout: Sendable {
    public var address: UInt16
    public var headSeq: UInt16
    public var tailSeq: UInt16
    public var bootID: UInt16
    public var windowCount: UInt16
    public var ackSeq: UInt16
    public var unread: UInt16
    public var logFlags: UInt16
    /// Registers from `address` up to the first record: what a header-only read covers.
    public var headerCount: UInt16
    public var windowOffset: UInt16
    public var windowRecords: Int
    public var recordSize: Int
    public var record: RecordLayout
    /// `ack_with_read: true`: the device accepts Modbus function 23 (Read/Write Multiple Registers) on its log, so
    /// `ack_seq` is written and the header and window read in one transaction, the write first. Off: function 16, then 03.
    public var ackWithRead = false

    /// Registers a full read (header and window) covers.
    public var fullReadCount: UInt16 { windowOffset + UInt16(windowRecords * recordSize) }
}

/// The fields of one event record by role; `seq`, `time` and `code` are always present.
public struct RecordLayout: Sendable {
    public var fields: [RecordRole: FieldLayout]

    public subscript(role: RecordRole) -> FieldLayout? { fields[role] }
}

/// What one event code becomes: its normalised type and the `data` fields it carries.
public struct EventRule: Sendable {
    public var code: UInt16
    public var type: String
    public var alarm: Bool
    /// Fixed fields such as `method: face`.
    public var constants: [(String, JSONValue)]
    /// Fields taken from the record, in order.
    public var fields: [(String, FieldSource)]
    /// `subject_field: value as ENUM`: the record's subject goes into the field that enum names for the record
    /// (`person` for a face, `card` for a card, `pass` for a QR code), after `fields`.
    public var subjectField: FieldSource?
}

extension DeviceProfile {
    /// The identity block's `serial` string at offset 0 of its own read, and the register it starts at; nil when
    /// the profile has none (its devices' event ids then carry the boot id alone, SPEC section 4).
    public var serialRegisters: (address: UInt16, field: FieldLayout)? {
        guard let identity, var field = identity.fields.first(where: { $0.name == "serial" && $0.type == .string }) else {
            return nil
        }
        let address = identity.address + field.offset
        field.offset = 0
        return (address, field)
    }
}
