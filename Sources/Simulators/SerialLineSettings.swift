import AccessModel

/// How an RS-485 line is framed (baud, parity, data and stop bits) and the Modbus RTU timing that follows from it.
public struct SerialLineSettings: Sendable, Hashable, CustomStringConvertible {
    public typealias Parity = SerialParity

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

    /// How long characters, frames and the silences between them take on this line.
    public var timing: RTULineTiming {
        RTULineTiming(baud: baud, dataBits: dataBits, parity: parity, stopBits: stopBits)
    }

    public var description: String {
        "\(baud) \(dataBits)\(parity.rawValue)\(stopBits)" + (pace ? " paced" : "")
    }
}
