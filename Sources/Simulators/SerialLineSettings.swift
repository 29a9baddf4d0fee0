/// How an RS-485 line is framed (baud, parity, data and stop bits) and the Modbus RTU timing that follows from it.
public struct SerialLineSettings: Sendable, Hashable, CustomStringConvertible {
    /// Parity of each character.
    public enum Parity: String, Sendable, Hashable {
        case none = "N", even = "E", odd = "O"
    }

    public var baud: Int
    public var parity: Parity
    public var dataBits: Int
    public var stopBits: Int
    /// Delay replies so that frames take their physical time on the line.
    public var pace: Bool

    public init(baud: Int = 9600, parity: Parity = .none, dataBits: Int = 8, stopBits: Int = 1, pace: Bool = false) {
        self.baud = baud
        self.parity = parity
        self.dataBits = dataBits
        self.stopBits = stopBits
        self.pace = pace
    }

    /// Bits on the wire per character: start, data, parity, stop (11 for 8E1 or 8N2, 10 for 8N1).
    public var bitsPerCharacter: Int { 1 + dataBits + (parity == .none ? 0 : 1) + stopBits }

    /// Time one character takes on the line, in nanoseconds.
    public var characterNanoseconds: UInt64 { UInt64(bitsPerCharacter) * 1_000_000_000 / UInt64(baud) }

    /// The silence that ends a frame: 3.5 characters, or a fixed 1.75 ms above 19200 baud.
    public var frameSilenceNanoseconds: UInt64 {
        baud > 19200 ? 1_750_000 : characterNanoseconds * 7 / 2
    }

    /// Time `bytes` characters take on the line, in nanoseconds.
    public func frameNanoseconds(_ bytes: Int) -> UInt64 { UInt64(bytes) * characterNanoseconds }

    public var description: String {
        "\(baud) \(dataBits)\(parity.rawValue)\(stopBits)" + (pace ? " paced" : "")
    }
}
