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
    public enum Parity: String, Sendable, CaseIterable {
        case none = "N", even = "E", odd = "O"
    }

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

    /// Bits on the wire per character: start, data, parity, stop.
    public var bitsPerCharacter: Int { 1 + dataBits + (parity == .none ? 0 : 1) + stopBits }

    /// Seconds one character occupies the line.
    public var characterTime: Double { Double(bitsPerCharacter) / Double(baud) }

    /// The mandatory silence between frames: 3.5 characters, fixed at 1.75 ms above 19200 baud.
    public var interFrameSilence: Double { baud > 19200 ? 0.00175 : 3.5 * characterTime }

    /// Seconds a frame of `bytes` occupies the line, silence included.
    public func frameTime(bytes: Int) -> Double { Double(bytes) * characterTime + interFrameSilence }
}
