/// The length of the RTU frame (unit, PDU, CRC) a device sends back to a request: the reply the master waits for.
enum RTUFrameLength {
    /// Bytes of the RTU request frame that carries `pdu` to one unit.
    static func request(_ pdu: [UInt8]) -> Int { 1 + pdu.count + 2 }

    /// Bytes of a normal reply to `pdu` (an exception reply, 5 bytes, is never longer). Reads carry their
    /// quantity after the address (functions 1–4, and 23 after its read address); writes echo 4 bytes of the
    /// request; any other function may answer up to a whole ADU.
    static func reply(to pdu: [UInt8]) -> Int {
        guard let function = pdu.first else { return maximum }
        let quantity = pdu.count >= 5 ? Int(pdu[3]) << 8 | Int(pdu[4]) : 125
        switch function {
        case 1, 2: return 5 + (quantity + 7) / 8
        case 3, 4, 23: return 5 + 2 * quantity
        case 5, 6, 15, 16: return 8
        default: return maximum
        }
    }

    /// The largest RTU ADU (Modbus over serial line, 2.5.1).
    static let maximum = 256
}
