import AccessModel

/// How a bus is reached: Modbus TCP to a host, or Modbus RTU on a serial line.
public enum BusEndpoint: Sendable, Equatable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case rtu(SerialLine)

    public var description: String {
        switch self {
        case let .tcp(host, port): "tcp://\(host):\(port)"
        case let .rtu(line): "rtu://\(line.device)@\(line.baud)/\(line.dataBits)\(line.parity.rawValue)\(line.stopBits)"
        }
    }

    public var isSerial: Bool { if case .rtu = self { true } else { false } }
}

/// An RS-485 line's device and framing.
public struct SerialLine: Sendable, Equatable {
    public typealias Parity = SerialParity

    public var device: String
    public var baud: Int
    public var parity: Parity
    public var dataBits: Int
    public var stopBits: Int
    /// Direction control for transceivers without auto-direction, or nil to leave the port as it is.
    public var rs485: RS485?

    public init(device: String, baud: Int, parity: Parity = .none, dataBits: Int = 8, stopBits: Int = 1, rs485: RS485? = nil) {
        self.device = device
        self.baud = baud
        self.parity = parity
        self.dataBits = dataBits
        self.stopBits = stopBits
        self.rs485 = rs485
    }

    /// How long characters, frames and the silences between them take on this line.
    public var timing: RTULineTiming {
        RTULineTiming(baud: baud, dataBits: dataBits, parity: parity, stopBits: stopBits)
    }
}

/// RS-485 direction control through RTS (libmodbus `modbus_rtu_set_serial_mode(MODBUS_RTU_RS485)`,
/// `modbus_rtu_set_rts`, `modbus_rtu_set_rts_delay`).
public struct RS485: Sendable, Equatable {
    /// The RTS level that enables the transmitter while a request is sent.
    public enum RTS: String, Sendable, CaseIterable { case up, down }

    public var rts: RTS
    /// Microseconds RTS is held before the first byte and after the last one; nil keeps libmodbus's default
    /// (one character time). libmodbus applies one delay to both sides of a frame.
    public var delayMicros: Int?

    public init(rts: RTS, delayMicros: Int? = nil) {
        self.rts = rts
        self.delayMicros = delayMicros
    }
}
