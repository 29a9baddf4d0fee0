import DeviceProfiles
import ModbusTransport
import Simulators
import Testing
import TestSupport

/// SPEC 3.5 commands as writes: a map-2 simulator serves coil and holding writes (05, 06, 15, 16) that its
/// profile's commands make, and records each, so tests can count a pulse's writes.
@Suite("map-2 simulator writes")
struct MapWriteSimulatorTests {
    @Test func coilWritesAreServedReadBackAndRecorded() throws {
        let barrier = SimulatedDevice(profile: try MapSimulatorTests.profile("barrier-gate"))
        #expect(ModbusPDU.reply(to: [0x05, 0, 0, 0xFF, 0], device: barrier) == [0x05, 0, 0, 0xFF, 0])
        #expect(ModbusPDU.reply(to: [0x01, 0, 0, 0, 6], device: barrier) == [0x01, 1, 0b01])
        #expect(ModbusPDU.reply(to: [0x05, 0, 0, 0, 0], device: barrier) == [0x05, 0, 0, 0, 0])
        #expect(ModbusPDU.reply(to: [0x0F, 0, 0, 0, 2, 1, 0b10], device: barrier) == [0x0F, 0, 0, 0, 2])
        #expect(ModbusPDU.reply(to: [0x01, 0, 0, 0, 6], device: barrier) == [0x01, 1, 0b10])
        #expect(barrier.mapWrites == [
            MapWrite(table: .coils, address: 0, value: 1, function: 5), MapWrite(table: .coils, address: 0, value: 0, function: 5),
            MapWrite(table: .coils, address: 0, value: 0, function: 15), MapWrite(table: .coils, address: 1, value: 1, function: 15),
        ])
    }

    @Test func writesOutsideTheProfileAreRefusedAndNotRecorded() throws {
        let barrier = SimulatedDevice(profile: try MapSimulatorTests.profile("barrier-gate"))
        #expect(ModbusPDU.reply(to: [0x05, 0, 6, 0xFF, 0], device: barrier) == [0x85, 2], "coil 6 is not mapped")
        #expect(ModbusPDU.reply(to: [0x05, 0, 2, 0xFF, 0], device: barrier) == [0x85, 2], "relay K3: no command writes it")
        #expect(ModbusPDU.reply(to: [0x05, 0, 0, 0x12, 0x34], device: barrier) == [0x85, 3], "05 takes FF00 or 0000")
        #expect(ModbusPDU.reply(to: [0x06, 0, 0, 0, 1], device: barrier) == [0x86, 2], "no holding registers")
        #expect(barrier.mapWrites.isEmpty)
    }

    static func pulseAndReadBack(_ host: SimulatorHost, _ connection: ModbusConnection) throws {
        let barrier = try #require(host.device(unit: 1))
        try connection.writeCoil(unit: 1, address: 0, on: true)
        var bits = [UInt8](repeating: 0, count: 6)
        try connection.readBits(unit: 1, address: 0, count: 6, discreteInputs: false, into: &bits)
        #expect(bits == [1, 0, 0, 0, 0, 0])
        try connection.writeCoil(unit: 1, address: 0, on: false)
        try connection.writeCoils(unit: 1, address: 0, values: [false, true])
        #expect(throws: ModbusError.self) { try connection.writeCoil(unit: 1, address: 2, on: true) }
        #expect(barrier.mapWrites == [
            MapWrite(table: .coils, address: 0, value: 1, function: 5), MapWrite(table: .coils, address: 0, value: 0, function: 5),
            MapWrite(table: .coils, address: 0, value: 0, function: 15), MapWrite(table: .coils, address: 1, value: 1, function: 15),
        ])
    }

    static func config(_ transport: SimulatorConfig.Transport) throws -> SimulatorConfig {
        var device = SimulatorConfig.Device(kind: .faceDoor, unit: 1, transport: transport)
        device.profile = try MapSimulatorTests.profile("barrier-gate")
        return SimulatorConfig(devices: [device])
    }

    @Test func coilWritesOverTCP() throws {
        let port = freeLoopbackPort()
        let host = SimulatorHost(config: try Self.config(.tcp(host: "127.0.0.1", port: port)))
        try host.start()
        defer { host.stop() }
        let connection = try ModbusConnection(bus: "t", endpoint: .tcp(host: "127.0.0.1", port: Int(port)), responseTimeoutMillis: 1000)
        try Self.pulseAndReadBack(host, connection)
    }

    @Test func coilWritesOverAnRTUPseudoTerminal() async throws {
        let pair = try await SerialPair.start()
        defer { pair.stop() }
        let host = SimulatorHost(config: try Self.config(.rtu(path: pair.deviceEnd, settings: SerialLineSettings(baud: 38400))))
        try host.start()
        defer { host.stop() }
        let connection = try ModbusConnection(bus: "r", endpoint: .rtu(SerialLine(device: pair.masterEnd, baud: 38400)),
                                              responseTimeoutMillis: 1000)
        try Self.pulseAndReadBack(host, connection)
    }
}
