import AccessModel

/// The three generic device kinds of register map version 1, numbered as HR 0 reports them.
public enum DeviceKind: UInt16, Sendable, CaseIterable, CustomStringConvertible {
    case faceDoor = 1
    case plateReader = 2
    case elevator = 3

    /// The profile name of the kind (`face-door`, `plate-reader`, `elevator`).
    public var name: String {
        switch self {
        case .faceDoor: "face-door"
        case .plateReader: "plate-reader"
        case .elevator: "elevator"
        }
    }

    public var description: String { name }

    /// The kind named by a profile name, or nil.
    public init?(name: String) {
        guard let kind = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = kind
    }

    /// The encoding of the 40-byte subject field: GB18030 for plate text, UTF-8 for person ids and cards.
    public var subjectEncoding: TextEncoding {
        self == .plateReader ? .gb18030 : .utf8
    }

    /// The state block (HR 20–29) of a device just powered on.
    var initialState: [UInt16] {
        var state = [UInt16](repeating: 0, count: 10)
        switch self {
        case .faceDoor: break
        case .plateReader: state[2] = 1
        case .elevator: state[0] = 1
        }
        return state
    }

    /// A serial number such as `FD-000001` for unit `unit`.
    func defaultSerial(unit: UInt8) -> String {
        let prefix: String
        switch self {
        case .faceDoor: prefix = "FD"
        case .plateReader: prefix = "LPR"
        case .elevator: prefix = "EL"
        }
        let digits = String(unit)
        return "SIM-\(prefix)-" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
