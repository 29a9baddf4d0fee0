import Foundation
import Simulators
import Testing
import TestSupport

@Suite("Modbus RTU server on a pseudo-terminal")
struct RTUServerTests {
    /// Three units on one line, served by one RTU server at 9600 8N1.
    static func line(_ pair: SerialPair, pace: Bool = false) throws -> (ModbusRTUServer, [SimulatedDevice]) {
        let devices = [SimulatedDevice(kind: .faceDoor, unit: 1), SimulatedDevice(kind: .plateReader, unit: 2),
                       SimulatedDevice(kind: .elevator, unit: 3)]
        let server = ModbusRTUServer(path: pair.deviceEnd, settings: SerialLineSettings(baud: 9600, pace: pace),
                                     devices: devices)
        try server.start()
        return (server, devices)
    }

    @Test func onlyTheAddressedUnitAnswersOnASharedLine() async throws {
        let pair = try await SerialPair.start()
        defer { pair.stop() }
        let (server, _) = try Self.line(pair)
        defer { server.stop() }
        for unit in UInt8(1)...3 {
            let words = try await Mbpoll.readRTU(path: pair.masterEnd, unit: unit, address: 0, count: 2)
            #expect(words == [UInt16(unit), 1])
        }
        let absent = try await Mbpoll.run(["-m", "rtu", "-b", "9600", "-P", "none", "-a", "7", "-0", "-r", "0", "-c", "1",
                                     "-1", "-o", "0.3", pair.masterEnd])
        #expect(absent.status != 0)
        #expect(server.statistics.otherUnits == 1)
        #expect(server.statistics.requests == 3)
    }
}
