import Foundation
import Simulators
import Testing
import TestSupport

@Suite("Modbus TCP server")
struct TCPServerTests {
    @Test func identityOfEachKindReadsBackThroughMbpoll() async throws {
        for kind in DeviceKind.allCases {
            let device = SimulatedDevice(kind: kind, unit: 1, serial: "SN-\(kind.rawValue)-ABCDEFGH", firmware: 2 << 16 | 7)
            let server = ModbusTCPServer(devices: [device])
            try server.start()
            defer { server.stop() }
            let before = Int64(Date().timeIntervalSince1970)
            let words = try await Mbpoll.readTCP(port: server.port, address: 0, count: 16)
            let after = Int64(Date().timeIntervalSince1970)
            #expect(words.count == 16)
            #expect(words[0] == kind.rawValue)
            #expect(words[1] == 1)
            let serial = words[2..<10].flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
            #expect(String(decoding: serial.prefix { $0 != 0 }, as: UTF8.self) == "SN-\(kind.rawValue)-ABCDEFGH")
            #expect(words.u32(10) == 2 << 16 | 7)
            let clock = Int64(words.u32(12))
            // The clock was read while mbpoll ran (which takes seconds on a crowded machine).
            #expect(clock >= before - 1 && clock <= after + 1, "clock \(clock), read between \(before) and \(after)")
        }
    }
}
