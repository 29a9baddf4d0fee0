import Foundation
import Simulators

/// A minimal Modbus master over a raw TCP socket or serial fd, for what mbpoll cannot show: exception bytes,
/// malformed frames, CRCs, dropped connections.
final class RawModbusClient {
    /// What came back for one request.
    enum Reply: Equatable {
        case registers([UInt16])
        case written
        case exception(UInt8)
        case none
    }

    let fd: Int32
    private var transaction: UInt16 = 0

    /// Connects to 127.0.0.1:`port` with a receive timeout.
    init(port: UInt16, timeout: Duration = .seconds(2)) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw SimulatorError("connect to 127.0.0.1:\(port) failed") }
        let ms = Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        var tv = timeval(tv_sec: ms / 1000, tv_usec: (ms % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Sends raw bytes as they are.
    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads up to `max` bytes; empty on timeout or close.
    func receive(max: Int = 512) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, max, 0) }
        return n > 0 ? Array(buffer.prefix(n)) : []
    }

    /// True when the server closed the connection: end of stream, or a reset when it left our bytes unread.
    func isClosedByPeer() -> Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, 0)
        return n == 0 || (n < 0 && errno == ECONNRESET)
    }

    /// Sends one PDU to `unit` and parses the reply PDU.
    func request(unit: UInt8 = 1, _ pdu: [UInt8]) -> Reply {
        transaction &+= 1
        let length = pdu.count + 1
        send([UInt8(transaction >> 8), UInt8(transaction & 0xFF), 0, 0, UInt8(length >> 8), UInt8(length & 0xFF), unit] + pdu)
        let reply = receive()
        guard reply.count >= 9 else { return .none }
        return Self.parse(Array(reply.dropFirst(7)))
    }

    /// Reads holding registers (function 03).
    func read(unit: UInt8 = 1, address: Int, count: Int) -> Reply {
        request(unit: unit, [0x03, UInt8(address >> 8), UInt8(address & 0xFF), UInt8(count >> 8), UInt8(count & 0xFF)])
    }

    /// Writes holding registers (function 16).
    func write(unit: UInt8 = 1, address: Int, values: [UInt16]) -> Reply {
        request(unit: unit, Self.writeMultiplePDU(address: address, values: values))
    }

    /// The function-16 PDU for `values` at `address`.
    static func writeMultiplePDU(address: Int, values: [UInt16]) -> [UInt8] {
        var pdu: [UInt8] = [0x10, UInt8(address >> 8), UInt8(address & 0xFF), 0, UInt8(values.count), UInt8(values.count * 2)]
        for v in values { pdu += [UInt8(v >> 8), UInt8(v & 0xFF)] }
        return pdu
    }

    /// Parses a reply PDU.
    static func parse(_ pdu: [UInt8]) -> Reply {
        guard let function = pdu.first else { return .none }
        if function & 0x80 != 0 { return pdu.count >= 2 ? .exception(pdu[1]) : .none }
        if function == 0x03 {
            let count = Int(pdu[1]) / 2
            return .registers((0..<count).map { UInt16(pdu[2 + $0 * 2]) << 8 | UInt16(pdu[3 + $0 * 2]) })
        }
        return .written
    }
}

extension [UInt16] {
    /// The u32 at `index`, high word first.
    func u32(_ index: Int) -> UInt32 { UInt32(self[index]) << 16 | UInt32(self[index + 1]) }
}
