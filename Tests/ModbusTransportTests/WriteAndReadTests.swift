import Foundation
import ModbusTransport
import Simulators
import Testing
import TestSupport

/// Function 23 (Read/Write Multiple Registers), which the bus poller uses to write `ack_seq` and read the next window
/// in one transaction: the simulators perform the write before the read, as the Modbus specification says, and the
/// client checks its replies as strictly as those of 03, 06 and 16.
@Suite("function 23 (write ack_seq, then read, in one transaction) over TCP and RTU, and hostile replies to it")
struct WriteAndReadTests {
    /// Writes `seq` to ack_seq and reads the header and window (106 registers at 100) in one request.
    static func ackAndRead(_ connection: ModbusConnection, unit: UInt8 = 1, seq: UInt32, count: Int = 106) throws -> [UInt16] {
        var words = [UInt16](repeating: 0, count: count)
        try words.withUnsafeMutableBufferPointer { buffer in
            try connection.writeAndReadRegisters(unit: unit, writeAddress: 106, values: [UInt16(seq >> 16), UInt16(seq & 0xFFFF)],
                                                 readAddress: 100, count: count, into: buffer.baseAddress!)
        }
        return words
    }

    @Test(arguments: Line.allCases)
    func theReplyAlreadyShowsTheWindowAfterTheAck(line: Line) async throws {
        let door = SimulatedDevice(kind: .faceDoor, unit: 1)
        for _ in 0..<7 { door.record(code: 16, point: 1) }
        let (connection, fixture) = try await line.serve([door])
        let (first, second) = try await onBus {
            withExtendedLifetime(fixture) {}
            return (try Self.ackAndRead(connection, seq: 3), try Self.ackAndRead(connection, seq: 6, count: 10))
        }
        #expect(first[6...7] == [0, 3], "ack_seq")
        #expect(first[8] == 4, "unread")
        #expect(first[5] == 3, "window_count")
        #expect([first[10...11], first[42...43], first[74...75]].map(Array.init) == [[0, 4], [0, 5], [0, 6]], "the window from 4")
        #expect(second[6...7] == [0, 6] && second[8] == 1 && second[5] == 1, "a header-only read after the ack: \(second)")
        #expect(door.logStatus.ack == 6)
        #expect(door.function23Requests == 2)
    }

    @Test(arguments: Line.allCases)
    func anAckAboveHeadIsExceptionThreeAndChangesNothing(line: Line) async throws {
        let door = SimulatedDevice(kind: .faceDoor, unit: 5)
        door.record(code: 16)
        let (connection, fixture) = try await line.serve([door])
        let failed = try await timedFailure {
            withExtendedLifetime(fixture) {}
            _ = try Self.ackAndRead(connection, unit: 5, seq: 9)
        }
        let error = try #require(failed.error)
        #expect(error.code == .exception(.illegalDataValue))
        #expect(error.description
            == "bus \(connection.bus) unit 5 register 106: device answered exception 03 (illegal data value) (modbus_write_and_read_registers)")
        #expect(door.logStatus.ack == 0)
    }

    /// The fault the poller's fallback is tested with: a device that knows only 03/06/16 answers exception 01.
    @Test(arguments: Line.allCases)
    func aDeviceWithoutFunction23AnswersIllegalFunctionAndWritesNothing(line: Line) async throws {
        var faults = DeviceFaults()
        faults.refuseFunction23 = true
        let door = SimulatedDevice(kind: .faceDoor, unit: 1, faults: faults)
        for _ in 0..<3 { door.record(code: 16) }
        let (connection, fixture) = try await line.serve([door])
        let failed = try await timedFailure {
            withExtendedLifetime(fixture) {}
            _ = try Self.ackAndRead(connection, seq: 2)
        }
        #expect(try #require(failed.error).code == .exception(.illegalFunction))
        #expect(door.logStatus.ack == 0)
        // Function 16 still acks.
        try await onBus {
            withExtendedLifetime(fixture) {}
            try connection.writeRegisters(unit: 1, address: 106, values: [0, 2])
        }
        #expect(door.logStatus.ack == 2)
    }

    /// Replies to function 23 no simulator sends, each refused as a bad reply rather than read as registers.
    enum HostileReply: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case wrongFunction, shortByteCount, longByteCount, otherUnit, badExceptionCode
        var testDescription: String { rawValue }

        /// The reply to `request` (a function 23 PDU asking for its read quantity at bytes 3-4).
        func reply(to request: [UInt8]) -> (unit: UInt8, pdu: [UInt8]) {
            let quantity = Int(request[3]) << 8 | Int(request[4])
            let data = [UInt8](repeating: 0, count: quantity * 2)
            switch self {
            case .wrongFunction: return (1, [0x03, UInt8(data.count)] + data)
            case .shortByteCount: return (1, [0x17, UInt8(data.count - 2)] + data.dropLast(2))
            case .longByteCount: return (1, [0x17, UInt8(data.count + 2)] + data + [0, 0])
            case .otherUnit: return (2, [0x17, UInt8(data.count)] + data)
            case .badExceptionCode: return (1, [0x97, 0x00])
            }
        }

        /// What the client says about it on `line`.
        func detail(_ line: Line) -> String {
            switch self {
            case .wrongFunction: "reply with function 3 to a request with function 23"
            case .shortByteCount: "reply of 19 data bytes to a request for 10 value(s)"
            case .longByteCount: "reply of 23 data bytes to a request for 10 value(s)"
            case .otherUnit: line == .tcp ? "reply from unit 2, not 1" : "reply from another unit than 1"
            case .badExceptionCode: "reply with an invalid exception code"
            }
        }
    }

    @Test(arguments: Line.allCases, HostileReply.allCases)
    func hostileRepliesToFunction23AreBadReplies(line: Line, hostile: HostileReply) async throws {
        let device = try await ScriptedDevice(line, timeoutMillis: 300) { request in hostile.reply(to: request) }
        let failed = try await timedFailure { _ = try Self.ackAndRead(device.connection, seq: 1, count: 10) }
        let error = try #require(failed.error, "\(hostile) was taken as an answer")
        #expect(error.code == .badReply, "\(error)")
        #expect(error.description == "bus \(device.connection.bus) unit 1 register 106: \(hostile.detail(line)) (modbus_write_and_read_registers)")
    }

    /// The simulators' faults that garble any reply (another unit's id, padding counted in the MBAP length, a bad CRC)
    /// garble function 23's too, and the client refuses it; the line answers rightly once they stop.
    @Test(arguments: Line.allCases)
    func garbledRepliesToFunction23AreRefusedAndTheLineRecovers(line: Line) async throws {
        var faults = DeviceFaults()
        switch line {
        case .tcp:
            faults.replyUnit = 2
        case .rtu:
            faults.corruptCRCProbability = 1
        }
        let door = SimulatedDevice(kind: .faceDoor, unit: 1, faults: faults)
        for _ in 0..<5 { door.record(code: 16) }
        let (connection, fixture) = try await line.serve([door])
        let failed = try await timedFailure {
            withExtendedLifetime(fixture) {}
            _ = try Self.ackAndRead(connection, seq: 2)
        }
        #expect(try #require(failed.error).code == .badReply)
        if line == .tcp {
            var padded = DeviceFaults()
            padded.paddedReplyBytes = 4
            door.faults = padded
            let failed = try await timedFailure {
                withExtendedLifetime(fixture) {}
                _ = try Self.ackAndRead(connection, seq: 3)
            }
            #expect(try #require(failed.error).description.contains("MBAP length"))
        }
        door.faults = .none
        let words = try await onBus {
            withExtendedLifetime(fixture) {}
            return try Self.ackAndRead(connection, seq: 4)
        }
        #expect(words[10...11] == [0, 5], "the window from 5 once the faults stop")
    }
}
