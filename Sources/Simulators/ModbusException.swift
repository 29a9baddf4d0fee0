/// A Modbus exception a simulated device answers with (function code | 0x80, then this code).
public struct ModbusException: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: UInt8
    public var message: String

    public init(code: UInt8, _ message: String = "") {
        self.code = code
        self.message = message
    }

    /// Exception 01: the function code is not supported.
    public static func illegalFunction(_ message: String) -> Self { Self(code: 0x01, message) }
    /// Exception 02: the register range is not readable or not writable this way.
    public static func illegalDataAddress(_ message: String) -> Self { Self(code: 0x02, message) }
    /// Exception 03: the quantity or the written value is out of range.
    public static func illegalDataValue(_ message: String) -> Self { Self(code: 0x03, message) }
    /// Exception 04: the device failed while executing the request.
    public static func serverFailure(_ message: String) -> Self { Self(code: 0x04, message) }
    /// Exception 0B: a TCP gateway found no device behind the addressed unit.
    public static func gatewayTargetFailed(_ message: String) -> Self { Self(code: 0x0B, message) }

    public var description: String {
        let hex = code < 16 ? "0\(String(code, radix: 16))" : String(code, radix: 16)
        return "Modbus exception \(hex)" + (message.isEmpty ? "" : ": \(message)")
    }
}
