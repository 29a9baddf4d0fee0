import Foundation
import Simulators
import Testing
import TestSupport

@Suite("Modbus TCP server")
struct TCPServerTests {
    @Test func identityOfEachKindReadsBackThroughMbpoll() throws {
        for kind in DeviceKind.allCases {
            let device = SimulatedDevice(kind: kind, unit: 1, serial: "SN-\(kind.rawValue)-ABCDEFGH", firmware: 2 << 16 | 7)
            let server = ModbusTCPServer(devices: [device])
            try server.start()
            defer { server.stop() }
            let words = try Mbpoll.readTCP(port: server.port, address: 0, count: 16)
            #expect(words.count == 16)
            #expect(words[0] == kind.rawValue)
            #expect(words[1] == 1)
            let serial = words[2..<10].flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
            #expect(String(decoding: serial.prefix { $0 != 0 }, as: UTF8.self) == "SN-\(kind.rawValue)-ABCDEFGH")
            #expect(words.u32(10) == 2 << 16 | 7)
            let clock = Int64(words.u32(12))
            #expect(abs(clock - Int64(Date().timeIntervalSince1970)) <= 2)
        }
    }
}
