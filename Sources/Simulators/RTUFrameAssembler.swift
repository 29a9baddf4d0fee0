/// Cuts a byte stream from an RS-485 line into Modbus RTU request frames, pure and without I/O.
///
/// A frame ends when its function code's length is complete (8 bytes for 01–06, 9 + byte count for 15/16,
/// 13 + byte count for 23) or, for other function codes, at the 3.5-character silence the caller reports with `silence()`.
/// After a CRC error everything up to the next silence is discarded, as a slave resynchronises.
/// Public for the fuzz target (Tests/Fuzz), which is built optimised and cannot import it `@testable`.
public struct RTUFrameAssembler {
    /// What the assembler found in the stream.
    public enum Output: Equatable {
        /// A frame with a valid CRC: address, PDU, CRC.
        case frame([UInt8])
        case badCRC
        /// Bytes that were cut off by silence or exceed the 256-byte RTU maximum.
        case malformed
    }

    private(set) var buffer: [UInt8] = []
    private var discarding = false

    public init() {}

    var isEmpty: Bool { buffer.isEmpty && !discarding }

    /// Adds bytes read from the line and returns the frames they complete.
    public mutating func append(_ bytes: some Sequence<UInt8>) -> [Output] {
        guard !discarding else { return [] }
        buffer += bytes
        var outputs: [Output] = []
        while buffer.count >= 2 {
            guard let length = Self.expectedLength(buffer) else { break }
            guard length <= 256 else {
                outputs.append(.malformed)
                discard()
                break
            }
            guard buffer.count >= length else { break }
            let frame = Array(buffer.prefix(length))
            guard CRC16.isValid(frame) else {
                outputs.append(.badCRC)
                discard()
                break
            }
            outputs.append(.frame(frame))
            buffer.removeFirst(length)
        }
        if buffer.count > 256 {
            outputs.append(.malformed)
            discard()
        }
        return outputs
    }

    /// Ends the current frame at a line silence; a pending frame of unknown length is judged by its CRC.
    public mutating func silence() -> Output? {
        defer {
            buffer = []
            discarding = false
        }
        guard !discarding, !buffer.isEmpty else { return nil }
        if buffer.count >= 4, Self.isOpenLength(buffer[1]) {
            return CRC16.isValid(buffer) ? .frame(buffer) : .badCRC
        }
        return .malformed
    }

    private mutating func discard() {
        buffer = []
        discarding = true
    }

    /// Function codes whose request length is not known from the header; they end at silence.
    private static func isOpenLength(_ function: UInt8) -> Bool {
        !(1...6).contains(function) && function != 15 && function != 16 && function != 23
    }

    /// The full request length, or nil when it depends on bytes not yet read or on silence.
    static func expectedLength(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        switch bytes[1] {
        case 1...6: return 8
        case 15, 16: return bytes.count >= 7 ? 9 + Int(bytes[6]) : nil
        case 23: return bytes.count >= 11 ? 13 + Int(bytes[10]) : nil
        default: return nil
        }
    }
}
