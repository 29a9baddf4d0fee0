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

    public init(device: String, baud: Int, parity: Parity = .none, dataBits: Int = 8, stopBits: Int = 1) {
        self.device = device
        self.baud = baud
        self.parity = parity
        self.dataBits = dataBits
        self.stopBits = stopBits
    }

    /// How long characters, frames and the silences between them take on this line.
    public var timing: RTULineTiming {
        RTULineTiming(baud: baud, dataBits: dataBits, parity: parity, stopBits: stopBits)
    }
}
