#if canImport(Glibc)
import Glibc
#endif

/// A failed Modbus transaction, naming the call, the bus, the unit and the register address.
public struct ModbusError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// No (complete) reply within the response timeout.
        case timeout
        /// The device answered with a Modbus exception (function code | 0x80).
        case exception(ModbusException)
        /// A reply with a wrong CRC, wrong length, or for another unit or transaction.
        case badReply
        /// The connection could not be opened or was lost.
        case connection
        /// Any other operating system error.
        case system(Int32)
    }

    public var code: Code
    /// The libmodbus function that failed, such as `modbus_read_registers`.
    public var call: String
    public var bus: String
    public var unit: UInt8?
    public var address: UInt16?
    public var detail: String
    /// The reply came from another unit on a shared RS-485 line (its own reply may still follow).
    var otherUnit = false

    public init(code: Code, call: String, bus: String, unit: UInt8? = nil, address: UInt16? = nil, detail: String) {
        self.code = code
        self.call = call
        self.bus = bus
        self.unit = unit
        self.address = address
        self.detail = detail
    }

    public var description: String {
        var place = "bus \(bus)"
        if let unit { place += " unit \(unit)" }
        if let address { place += " register \(address)" }
        return "\(place): \(detail) (\(call))"
    }

    /// True when the request got no usable answer, so the line must be flushed before the next one.
    public var leftLineDirty: Bool {
        switch code {
        case .timeout, .badReply: true
        default: false
        }
    }
}

/// The Modbus exception codes a device answers with.
public struct ModbusException: Sendable, Equatable, CustomStringConvertible {
    public var code: UInt8

    public init(code: UInt8) { self.code = code }

    public static let illegalFunction = ModbusException(code: 1)
    public static let illegalDataAddress = ModbusException(code: 2)
    public static let illegalDataValue = ModbusException(code: 3)
    public static let serverFailure = ModbusException(code: 4)

    public var description: String {
        let names = [1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "server device failure",
                     5: "acknowledge", 6: "server device busy", 8: "memory parity error", 10: "gateway path unavailable",
                     11: "gateway target device failed to respond"]
        return "exception \(String(format2: code)) (\(names[Int(code)] ?? "unknown"))"
    }
}

extension String {
    init(format2 value: UInt8) { self = value < 10 ? "0\(value)" : "\(value)" }
}
