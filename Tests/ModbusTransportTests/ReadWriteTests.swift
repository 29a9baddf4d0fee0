import AccessModel
import Foundation
import ModbusTransport
import Simulators
import Testing
import TestSupport

@Suite("libmodbus client against the simulators: reads and writes over TCP and RTU")
struct ReadWriteTests {
    @Test(arguments: Line.allCases)
    func readsIdentityStateAndEventBlockOfEachKind(line: Line) async throws {
        let devices = threeKinds()
        let (door, gate, lift) = (devices[0], devices[1], devices[2])
        door.record(code: 1, point: 1, direction: 1, value: 934, subject: "P-0012")
        gate.record(code: 1, point: 2, direction: 2, value: 962, extra: 1 << 16 | 5, subject: "云A12345")
        lift.setState(register: 20, to: UInt16(bitPattern: -2))
        lift.record(code: 3, point: -2, value: 1, extra: 1)
        let (connection, fixture) = try await line.serve(devices)
        try await onBus {
            withExtendedLifetime(fixture) {}
            for device in devices {
                #expect(try connection.identity(unit: device.unit) == Identity(of: device))
            }
            // State block HR 20–29: plate reader lane role entry (22 = 1), elevator floor -2 as i16.
            #expect(try connection.readRegisters(unit: 2, address: 20, count: 10)[2] == 1)
            #expect(Int16(bitPattern: try connection.readRegisters(unit: 3, address: 20, count: 10)[0]) == -2)
            for device in devices {
                let block = try connection.readRegisters(unit: device.unit, address: 100, count: 106)
                #expect(block[0...1] == [0, 1], "head_seq of \(device.kind)")
                #expect(block[4] == 1, "boot_id of \(device.kind)")
                #expect(block[5] == 1, "window_count of \(device.kind)")
                #expect(block[8] == 1, "unread of \(device.kind)")
                let record = Array(block[10..<42])
                #expect(record[0...1] == [0, 1], "record 0 seq of \(device.kind)")
                #expect(record[5] == (device.kind == .elevator ? 3 : 1), "record 0 code of \(device.kind)")
            }
            // The plate's subject field is GB18030 text: 云 is 0xD4 0xC6.
            let plate = try connection.readRegisters(unit: 2, address: 110 + 12, count: 20)
            let bytes = plate.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
            #expect(try TextEncoding.gb18030.decode(bytes) == "云A12345")
            #expect(Int16(bitPattern: try connection.readRegisters(unit: 3, address: 116, count: 1)[0]) == -2)
        }
    }

    @Test(arguments: Line.allCases)
    func writingAckSeqReleasesEventsUpToIt(line: Line) async throws {
        let door = SimulatedDevice(kind: .faceDoor, unit: 1)
        for _ in 0..<5 { door.record(code: 16, point: 1) }
        let (connection, fixture) = try await line.serve([door])
        let header = try await onBus {
            withExtendedLifetime(fixture) {}
            try connection.writeRegisters(unit: 1, address: 106, values: [0, 3])
            return try connection.readRegisters(unit: 1, address: 100, count: 12)
        }
        #expect(door.logStatus.ack == 3)
        #expect(header[6...7] == [0, 3], "ack_seq")
        #expect(header[8] == 2, "unread")
        #expect(header[10...11] == [0, 4], "the window starts after the ack")
    }

    @Test(arguments: Line.allCases)
    func commandWrittenWithFunction16IsExecutedAndRecorded(line: Line) async throws {
        let gate = SimulatedDevice(kind: .plateReader, unit: 4)
        let (connection, fixture) = try await line.serve([gate])
        try await onBus {
            withExtendedLifetime(fixture) {}
            try connection.writeRegisters(unit: 4, address: 30, values: [1, 2, 0x0001, 0xE240])
        }
        #expect(gate.stateRegisters[0] == 1, "barrier open")
        let executed = try #require(gate.event(seq: 1))
        #expect(executed.code == 8)
        #expect(executed.extra == 123_456)
    }

    @Test(arguments: Line.allCases)
    func setsTheDeviceClockWithFunction16(line: Line) async throws {
        let door = SimulatedDevice(kind: .faceDoor, unit: 1)
        door.setClock(offsetSeconds: -3600, synchronised: false)
        let (connection, fixture) = try await line.serve([door])
        let now = UInt32(Timestamp.now.millisecondsSinceEpoch / 1000)
        let clock = try await onBus {
            withExtendedLifetime(fixture) {}
            try connection.writeRegisters(unit: 1, address: 12, values: [UInt16(now >> 16), UInt16(now & 0xFFFF)])
            let words = try connection.readRegisters(unit: 1, address: 12, count: 3)
            return (UInt32(words[0]) << 16 | UInt32(words[1]), words[2])
        }
        #expect(clock.0 >= now && clock.0 <= now + 2)
        #expect(clock.1 & 8 == 0, "health bit3 clock not set is cleared")
    }

    @Test func twoUnitsOnOneRTULineAnswerInTurn() async throws {
        let door = SimulatedDevice(kind: .faceDoor, unit: 1)
        let lift = SimulatedDevice(kind: .elevator, unit: 2)
        let fixture = try await RTUFixture([door, lift])
        let identities = try await onBus {
            try (0..<10).map { i in try fixture.connection.identity(unit: UInt8(1 + i % 2)) }
        }
        #expect(identities == (0..<10).map { Identity(of: $0 % 2 == 0 ? door : lift) })
        #expect(fixture.server.statistics.requests == 10)
    }
}
