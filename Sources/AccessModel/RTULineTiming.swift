/// Parity of each character on a serial line.
public enum SerialParity: String, Sendable, Hashable, CaseIterable {
    case none = "N", even = "E", odd = "O"
}

/// The physical timing of a Modbus RTU line: how long a character and a frame take at its baud rate and
/// framing, and the silence that separates frames (3.5 characters, a fixed 1.75 ms above 19200 baud).
public struct RTULineTiming: Sendable, Hashable {
    public let baud: Int
    /// Bits on the wire per character: start, data, parity, stop (10 for 8N1, 11 for 8E1 or 8N2).
    public let bitsPerCharacter: Int

    public init(baud: Int, dataBits: Int, parity: SerialParity, stopBits: Int) {
        self.baud = baud
        bitsPerCharacter = 1 + dataBits + (parity == .none ? 0 : 1) + stopBits
    }

    /// Nanoseconds one character occupies the line.
    public var characterNanoseconds: UInt64 { UInt64(bitsPerCharacter) * 1_000_000_000 / UInt64(baud) }

    /// The mandatory silence between frames, in nanoseconds.
    public var frameSilenceNanoseconds: UInt64 { baud > 19200 ? 1_750_000 : characterNanoseconds * 7 / 2 }

    /// Nanoseconds `bytes` characters occupy the line.
    public func frameNanoseconds(_ bytes: Int) -> UInt64 { UInt64(bytes) * characterNanoseconds }
}

extension RTULineTiming {
    /// How long a master waits for a reply on this line (SPEC 2): the configured `timeout` is how long the device may
    /// take to start answering, and the line adds what it physically takes — the request's own frame (a UART may
    /// still be sending it when the write returns), the 3.5-character silence that ends it, and the reply's frame.
    /// A full event window read at 9600 baud 8N1 (8 bytes out, 217 back) adds 8.3 + 4.0 + 226 ms to the timeout.
    public func responseWindowNanoseconds(timeoutMillis: Int, requestBytes: Int, replyBytes: Int) -> UInt64 {
        UInt64(max(0, timeoutMillis)) * 1_000_000 + frameNanoseconds(requestBytes) + frameSilenceNanoseconds
            + frameNanoseconds(replyBytes)
    }
}
