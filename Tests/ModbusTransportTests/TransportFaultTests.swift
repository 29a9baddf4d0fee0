import Foundation
import ModbusTransport
import Simulators
import Testing
import TestSupport

@Suite("Modbus client (TCP round trip, libmodbus on RTU) against faulty simulators: exceptions, timeouts, garbled replies, dropped links")
struct TransportFaultTests {
    @Test(arguments: Line.allCases)
    func exceptionRepliesBecomeNamedErrorsWithBusUnitAndAddress(line: Line) async throws {
        let door = SimulatedDevice(kind: .faceDoor, unit: 5)
        door.record(code: 16)
        let (connection, fixture) = try await line.serve([door])
        let bus = connection.bus
        let (aboveHead, unmapped, readOnly) = try await onBus {
            withExtendedLifetime(fixture) {}
            func failure(_ body: () throws -> Void) -> ModbusError? {
                do { try body(); return nil } catch { return error as? ModbusError }
            }
            return (failure { try connection.writeRegisters(unit: 5, address: 106, values: [0, 9]) },
                    failure { _ = try connection.readRegisters(unit: 5, address: 40, count: 4) },
                    failure { try connection.writeRegister(unit: 5, address: 0, value: 7) })
        }
        let above = try #require(aboveHead)
        #expect(above.code == .exception(.illegalDataValue))
        #expect((above.bus, above.unit, above.address) == (bus, 5, 106))
        #expect(above.description
            == "bus \(bus) unit 5 register 106: device answered exception 03 (illegal data value) (modbus_write_registers)")
        let missing = try #require(unmapped)
        #expect(missing.code == .exception(.illegalDataAddress))
        #expect(missing.description
            == "bus \(bus) unit 5 register 40: device answered exception 02 (illegal data address) (modbus_read_registers)")
        #expect(try #require(readOnly).description
            == "bus \(bus) unit 5 register 0: device answered exception 02 (illegal data address) (modbus_write_register)")
        #expect(door.logStatus.ack == 0, "a refused ack changes nothing")
    }

    @Test(arguments: Line.allCases)
    func injectedServerFailureIsNamedAndTheNextRequestSucceeds(line: Line) async throws {
        let lift = SimulatedDevice(kind: .elevator, unit: 3, faults: DeviceFaults(exceptionCode: 4))
        let (connection, fixture) = try await line.serve([lift])
        let failed = try await timedFailure {
            withExtendedLifetime(fixture) {}
            _ = try connection.readRegisters(unit: 3, address: 100, count: 10)
        }
        #expect(try #require(failed.error).description.contains("device answered exception 04 (server device failure)"))
        lift.faults = .none
        #expect(try await onBus { try connection.identity(unit: 3) } == Identity(of: lift))
    }

    @Test(arguments: Line.allCases)
    func silentDeviceCostsTheTimeoutAndTheNextUnitAnswersRightly(line: Line) async throws {
        let silent = SimulatedDevice(kind: .faceDoor, unit: 1, faults: DeviceFaults(noReplyProbability: 1))
        let healthy = SimulatedDevice(kind: .plateReader, unit: 2)
        let (connection, fixture) = try await line.serve([silent, healthy], timeoutMillis: 200)
        let failed = try await timedFailure {
            withExtendedLifetime(fixture) {}
            _ = try connection.readRegisters(unit: 1, address: 100, count: 10)
        }
        let error = try #require(failed.error)
        #expect(error.code == .timeout)
        // On RTU the wait is the timeout and the frames' time on the line (SPEC 2): 8 bytes out, a 3.5-character gap
        // and 25 bytes back at 9600 baud, 38 ms.
        let lineTime = line == .rtu ? " (+38ms for the frames at 9600 baud)" : ""
        #expect(error.description == "bus \(connection.bus) unit 1 register 100: no reply within 200ms\(lineTime) (modbus_read_registers)")
        #expect(failed.seconds >= 0.19 && failed.seconds < 0.6, "a silent unit costs about the timeout, took \(failed.seconds)s")
        #expect(try await onBus { try connection.identity(unit: 2) } == Identity(of: healthy))
    }

    /// A late reply (delay > timeout) of unit 1 must never be taken as unit 2's answer (libmodbus #83, #488).
    @Test(arguments: Line.allCases)
    func lateReplyOfADelayedUnitIsNeverTakenAsTheNextAnswer(line: Line) async throws {
        let slow = SimulatedDevice(kind: .faceDoor, unit: 1, faults: DeviceFaults(delayMilliseconds: 350))
        let healthy = SimulatedDevice(kind: .elevator, unit: 2)
        let (connection, fixture) = try await line.serve([slow, healthy], timeoutMillis: 200)
        let failed = try await timedFailure {
            withExtendedLifetime(fixture) {}
            _ = try connection.readRegisters(unit: 1, address: 0, count: 16)
        }
        #expect(try #require(failed.error).code == .timeout)
        // The next request goes to a healthy unit and must get that unit's own identity, not the late one.
        let next = try await onBus { () -> Result<Identity, ModbusError> in
            do { return .success(try connection.identity(unit: 2)) } catch { return .failure(error as! ModbusError) }
        }
        #expect((try? next.get()) != Identity(of: slow), "the late reply was taken as unit 2's answer")
        #expect((try? next.get()) == Identity(of: healthy), "the healthy unit's own answer, got \(next)")
        // And the line stays in step once the slow unit is fast again: every request gets its own answer.
        slow.faults = .none
        let later = try await onBus { (0..<6).map { i in try? connection.identity(unit: UInt8(1 + i % 2)) } }
        #expect(later == (0..<6).map { Identity(of: $0 % 2 == 0 ? slow : healthy) })
    }

    @Test func corruptedCRCIsABadReplyAndTheLineRecovers() async throws {
        let door = SimulatedDevice(kind: .faceDoor, unit: 1, faults: DeviceFaults(corruptCRCProbability: 1))
        let lift = SimulatedDevice(kind: .elevator, unit: 2)
        let fixture = try await RTUFixture([door, lift])
        let failed = try await timedFailure { _ = try fixture.connection.readRegisters(unit: 1, address: 0, count: 16) }
        let error = try #require(failed.error)
        #expect(error.code == .badReply)
        #expect(error.description == "bus b3-rs485 unit 1 register 0: reply with a bad CRC (modbus_read_registers)")
        #expect(try await onBus { try fixture.connection.identity(unit: 2) } == Identity(of: lift))
        door.faults = .none
        #expect(try await onBus { try fixture.connection.identity(unit: 1) } == Identity(of: door))
    }

    @Test func droppedTCPConnectionFailsOnceAndTheNextRequestReconnects() async throws {
        let gate = SimulatedDevice(kind: .plateReader, unit: 1)
        // The simulator closes the link as soon as its thread runs; with a hundred suites on two cores that can take
        // longer than a 300 ms reply timeout, which would turn the lost link into a timeout.
        let fixture = try TCPFixture([gate], timeoutMillis: 5000)
        #expect(try await onBus { try fixture.connection.identity(unit: 1) } == Identity(of: gate))
        gate.dropConnectionOnNextRequest()
        let failed = try await timedFailure { _ = try fixture.connection.readRegisters(unit: 1, address: 0, count: 16) }
        let error = try #require(failed.error)
        #expect(error.code == .connection, "\(error)")
        #expect(error.description.hasPrefix("bus lan unit 1 register 0: link to tcp://127.0.0.1:\(fixture.server.port) lost: "),
                "\(error)")
        #expect(!fixture.connection.isConnected)
        #expect(try await onBus { try fixture.connection.identity(unit: 1) } == Identity(of: gate))
        #expect(fixture.server.statistics.connections == 2)
    }

    @Test func refusedTCPConnectionNamesTheEndpoint() async throws {
        let port = freeLoopbackPort()
        let connection = try ModbusConnection(bus: "lan", endpoint: .tcp(host: "127.0.0.1", port: Int(port)),
                                              responseTimeoutMillis: 200)
        let failed = try await timedFailure { _ = try connection.readRegisters(unit: 9, address: 0, count: 1) }
        let error = try #require(failed.error)
        #expect(error.code == .connection)
        #expect(error.unit == 9)
        #expect(error.description.hasPrefix("bus lan unit 9: cannot open tcp://127.0.0.1:\(port): "), "\(error)")
    }

    /// Finding 4: a TCP reply carrying another unit's id (a misbehaving TCP-to-RS-485 converter) was accepted as
    /// the asked unit's answer; it is a bad reply, as on RTU, and the next request is answered rightly.
    @Test func tcpReplyFromAnotherUnitIsRejected() async throws {
        var faults = DeviceFaults()
        faults.replyUnit = 2
        let door = SimulatedDevice(kind: .faceDoor, unit: 1, faults: faults)
        let lift = SimulatedDevice(kind: .elevator, unit: 3)
        let fixture = try TCPFixture([door, lift])
        let failed = try await timedFailure { _ = try fixture.connection.readRegisters(unit: 1, address: 100, count: 10) }
        let error = try #require(failed.error)
        #expect(error.code == .badReply)
        #expect(error.description == "bus lan unit 1 register 100: reply from unit 2, not 1 (modbus_read_registers)")
        #expect(try await onBus { try fixture.connection.identity(unit: 3) } == Identity(of: lift))
        door.faults = .none
        #expect(try await onBus { try fixture.connection.identity(unit: 1) } == Identity(of: door))
    }

    /// Finding 9: bytes trailing one unit's reply were read as the start of the next unit's answer, so a healthy
    /// unit failed. They are dropped before the next request, on both kinds of line.
    @Test(arguments: Line.allCases)
    func trailingBytesAfterAReplyAreNeverBlamedOnTheNextUnit(line: Line) async throws {
        var faults = DeviceFaults()
        faults.trailingBytes = 7
        let noisy = SimulatedDevice(kind: .faceDoor, unit: 1, faults: faults)
        let healthy = SimulatedDevice(kind: .plateReader, unit: 2)
        let (connection, fixture) = try await line.serve([noisy, healthy])
        let answers = try await onBus { () -> [String] in
            withExtendedLifetime(fixture) {}
            return (0..<10).flatMap { _ in
                [1, 2].map { unit in
                    do { return try connection.identity(unit: UInt8(unit)).serial } catch { return "\(error)" }
                }
            }
        }
        #expect(answers == Array(repeating: [noisy.serial, healthy.serial], count: 10).flatMap { $0 })
        #expect(connection.discardedBytes > 0)
    }

    /// Finding 9: a TCP reply longer than its function implies (junk counted in the MBAP length) is not accepted.
    @Test func tcpReplyWhoseLengthDoesNotMatchTheRequestIsRejected() async throws {
        var faults = DeviceFaults()
        faults.paddedReplyBytes = 4
        let door = SimulatedDevice(kind: .faceDoor, unit: 1, faults: faults)
        let fixture = try TCPFixture([door])
        let failed = try await timedFailure { _ = try fixture.connection.readRegisters(unit: 1, address: 100, count: 10) }
        let error = try #require(failed.error)
        #expect(error.code == .badReply)
        #expect(error.description == "bus lan unit 1 register 100: reply whose MBAP length 27 does not match its 23 bytes (modbus_read_registers)")
        door.faults = .none
        #expect(try await onBus { try fixture.connection.identity(unit: 1) } == Identity(of: door))
    }
}
