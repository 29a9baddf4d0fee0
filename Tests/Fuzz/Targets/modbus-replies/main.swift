import FuzzSupport
import ModbusTransport
import Foundation
import Simulators
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Every reply the gateway's Modbus client can receive, through the real client (`ModbusConnection`, whose Modbus
/// TCP round trip reads the reply itself): a fuzzing device on a loopback socket answers each request with the input and hangs up.
///
/// Input: byte 0 picks the request (read 1-125 registers, write one, write several; bit 7: function 23, write two and
/// read 1-120) and which reply header bytes
/// are copied from the request (transaction id, unit, function) so that replies get past the first checks; the
/// rest is the reply.
let reply = Mutex<[UInt8]>([])
let device: (fd: Int32, port: UInt16) = {
    let fd = try! Socket.listen(host: "127.0.0.1", port: 0)
    let port = Socket.localPort(fd)
    let thread = Thread {
        while true {
            let client = accept(fd, nil, nil)
            guard client >= 0 else { continue }
            var request = [UInt8](repeating: 0, count: 300)
            let count = recv(client, &request, request.count, 0)
            var answer = reply.withLock { $0 }
            if count >= 8, let flags = answer.first {
                answer.removeFirst()
                for (bit, index) in [(0x10, 0), (0x10, 1), (0x20, 6), (0x40, 7)] where flags & UInt8(bit) != 0 && index < answer.count {
                    answer[index] = request[index]
                }
            }
            _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            close(client)
        }
    }
    thread.start()
    return (fd, port)
}()
let connection = try! ModbusConnection(bus: "fuzz", endpoint: .tcp(host: "127.0.0.1", port: Int(device.port)),
                                       responseTimeoutMillis: 1000)

fuzz { input in
    guard let op = input.bytes.first else { return }
    reply.withLock { $0 = Array(input.bytes) }
    let count = Int(op >> 1 & 0x07) * 17 + 1
    switch op & 0x80 != 0 ? 3 : op % 3 {
    case 3:
        // Function 23, as the bus poller acks and reads the event log.
        let buffer = UnsafeMutablePointer<UInt16>.allocate(capacity: count)
        defer { buffer.deallocate() }
        try? connection.writeAndReadRegisters(unit: 1, writeAddress: 106, values: [0, 7], readAddress: 100, count: count, into: buffer)
    case 0: _ = try? connection.readRegisters(unit: 1, address: 100, count: count)
    case 1: try? connection.writeRegister(unit: 1, address: 100, value: 7)
    default: try? connection.writeRegisters(unit: 1, address: 100, values: [UInt16](repeating: 1, count: count))
    }
    connection.disconnect()
}
