import Foundation
import ModbusTransport
import Simulators
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A device that answers every request with a reply PDU a test makes from the request PDU (the hostile replies no
/// simulator sends: a wrong function, a wrong byte count, another unit), over a real loopback socket or a pty pair.
final class ScriptedDevice: @unchecked Sendable {
    // @unchecked: the descriptors are set once in init; the answering thread only reads them.
    typealias Script = @Sendable (_ request: [UInt8]) -> (unit: UInt8, pdu: [UInt8])

    let connection: ModbusConnection
    private let listener: Int32
    private let pair: SerialPair?
    private let port: Int32

    init(_ line: Line, timeoutMillis: Int = 300, script: @escaping Script) async throws {
        switch line {
        case .tcp:
            listener = try Socket.listen(host: "127.0.0.1", port: 0)
            pair = nil
            port = -1
            connection = try ModbusConnection(bus: "lan", endpoint: .tcp(host: "127.0.0.1", port: Int(Socket.localPort(listener))),
                                              responseTimeoutMillis: timeoutMillis)
            let listener = listener
            Thread.detachNewThread {
                while true {
                    let client = accept(listener, nil, nil)
                    guard client >= 0 else { return }
                    Self.serveTCP(client, script)
                    close(client)
                }
            }
        case .rtu:
            let pair = try await SerialPair.start()
            self.pair = pair
            listener = -1
            port = open(pair.deviceEnd, O_RDWR | O_NOCTTY)
            connection = try ModbusConnection(bus: "b3-rs485", endpoint: .rtu(SerialLine(device: pair.masterEnd, baud: 9600)),
                                              responseTimeoutMillis: timeoutMillis)
            let port = port
            Thread.detachNewThread { Self.serveRTU(port, script) }
        }
    }

    deinit {
        connection.disconnect()
        if listener >= 0 {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
        pair?.stop()
        if port >= 0 { close(port) }
    }

    /// MBAP requests in, scripted PDUs out with the request's transaction id, until the client hangs up.
    private static func serveTCP(_ fd: Int32, _ script: Script) {
        var input: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while true {
            while input.count < 7 || input.count < 6 + (Int(input[4]) << 8 | Int(input[5])) {
                let n = recv(fd, &chunk, chunk.count, 0)
                guard n > 0 else { return }
                input += chunk[0..<n]
            }
            let length = Int(input[4]) << 8 | Int(input[5])
            let (unit, pdu) = script(Array(input[7..<(6 + length)]))
            let frame = [input[0], input[1], 0, 0, UInt8((pdu.count + 1) >> 8), UInt8((pdu.count + 1) & 0xFF), unit] + pdu
            input.removeFirst(6 + length)
            guard send(fd, frame, frame.count, Int32(MSG_NOSIGNAL)) == frame.count else { return }
        }
    }

    /// RTU request frames in (cut by the simulators' own assembler), scripted PDUs out with their CRC.
    private static func serveRTU(_ fd: Int32, _ script: Script) {
        var assembler = RTUFrameAssembler()
        var chunk = [UInt8](repeating: 0, count: 512)
        while true {
            let n = read(fd, &chunk, chunk.count)
            guard n > 0 else { return }
            for case let .frame(frame) in assembler.append(chunk[0..<n]) {
                let (unit, pdu) = script(Array(frame[1..<(frame.count - 2)]))
                let reply = CRC16.appending(to: [unit] + pdu)
                guard write(fd, reply, reply.count) == reply.count else { return }
            }
        }
    }
}
