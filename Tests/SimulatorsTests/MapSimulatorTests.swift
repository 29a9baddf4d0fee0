import AccessModel
import DeviceProfiles
import Foundation
import ModbusTransport
import Simulators
import Testing
import TestSupport

/// The SPEC 3.5 maps served from their profiles over TCP and an RTU pseudo-terminal, read with functions 01–04
/// exactly as the gateway plans its requests.
@Suite("map-2 simulators")
struct MapSimulatorTests {
    static let devices = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Devices").path

    static func profile(_ name: String) throws -> DeviceProfile { try DeviceProfile.load(path: "\(devices)/\(name).yaml") }

    static func image(_ map: PolledMap, unit: UInt8, _ connection: ModbusConnection) throws -> [UInt16] {
        try map.readImage(registers: { read, buffer throws(ModbusError) in
            try connection.readRegisters(unit: unit, address: read.address, count: read.count, input: read.table == .input, into: buffer)
        }, bits: { read, buffer throws(ModbusError) in
            try connection.readBits(unit: unit, address: read.address, count: read.count,
                                    discreteInputs: read.table == .discreteInputs, into: buffer)
        })
    }

    /// Sets values on every map and reads them back through `connection`.
    static func checkAllMaps(_ host: SimulatorHost, _ connection: ModbusConnection) throws {
        let lift = host.device(unit: 1)!, turnstile = host.device(unit: 2)!, reader = host.device(unit: 3)!
        lift.updateMap { map in
            map.set("trapped", 1)
            map.set("floor", -2)
            map.set("fault_code", 21)
            map.set("trips", 0x1234_5678)
        }
        turnstile.updateMap { $0.set("entries", 0xFFFF_FFFF) }
        reader.updateMap { map in
            map.set("card", Int64(bitPattern: 0xF123_4567_89AB_CDEF))
            map.set("time", time: Timestamp(millisecondsSinceEpoch: 1_795_766_462_000))
        }
        let liftMap = try #require(try profile("lift-monitor").map)
        let liftImage = try image(liftMap, unit: 1, connection)
        #expect(liftImage[liftMap.blocks[1].imageOffset + 1] == 0x0021, "fault 21 in BCD on the wire")
        #expect(liftImage[liftMap.blocks[1].imageOffset + 2] == 0x5678, "trip counter low word first on the wire")
        let liftReading = MapReading(map: liftMap, image: liftImage)
        #expect(JSONValue.object(liftReading.state())["floor"] == .int(-2))
        #expect(liftReading.value(liftMap.field(named: "fault_code")!) == .int(21) && liftReading.value(liftMap.field(named: "trips")!) == .int(0x1234_5678))
        #expect(MapReading(map: liftMap, image: liftImage).raw(liftMap.field(named: "trapped")!) == 1)
        let turnstileMap = try #require(try profile("turnstile").map)
        #expect(JSONValue.object(MapReading(map: turnstileMap, image: try image(turnstileMap, unit: 2, connection)).state())["entries"]
                == .int(0xFFFF_FFFF))
        let readerMap = try #require(try profile("card-reader").map)
        let reading = MapReading(map: readerMap, image: try image(readerMap, unit: 3, connection))
        #expect(reading.value(readerMap.field(named: "card")!) == .string("17375808098319191535"))
        #expect(reading.value(readerMap.field(named: "time")!) == .string("2026-11-27T08:01:02.000Z"))
        // Anything the profile does not map answers exception 02; writes are refused.
        #expect(throws: ModbusError.self) { _ = try connection.readRegisters(unit: 2, address: 6, count: 1) }
        #expect(throws: ModbusError.self) { try connection.writeRegister(unit: 2, address: 0, value: 1) }
    }

    static func config(_ transport: SimulatorConfig.Transport) throws -> SimulatorConfig {
        let devices = try ["lift-monitor", "turnstile", "card-reader"].enumerated().map { index, name in
            var device = SimulatorConfig.Device(kind: .faceDoor, unit: UInt8(index + 1), transport: transport)
            device.profile = try profile(name)
            return device
        }
        return SimulatorConfig(devices: devices)
    }

    @Test func threeMapsOverTCP() throws {
        let port = freeLoopbackPort()
        let host = SimulatorHost(config: try Self.config(.tcp(host: "127.0.0.1", port: port)))
        try host.start()
        defer { host.stop() }
        let connection = try ModbusConnection(bus: "t", endpoint: .tcp(host: "127.0.0.1", port: Int(port)), responseTimeoutMillis: 1000)
        try Self.checkAllMaps(host, connection)
    }

    @Test func threeMapsOverAnRTUPseudoTerminal() async throws {
        let pair = try await SerialPair.start()
        defer { pair.stop() }
        let host = SimulatorHost(config: try Self.config(.rtu(path: pair.deviceEnd, settings: SerialLineSettings(baud: 38400))))
        try host.start()
        defer { host.stop() }
        let connection = try ModbusConnection(bus: "r", endpoint: .rtu(SerialLine(device: pair.masterEnd, baud: 38400)),
                                              responseTimeoutMillis: 1000)
        try Self.checkAllMaps(host, connection)
    }

    @Test func actionsFromTheConfigDriveTheMaps() throws {
        let config = try SimulatorConfig.parse(yaml: """
            devices:
              - profile: \(Self.devices)/card-reader.yaml
                unit: 3
                tcp: { port: 0 }
                actions:
                  - { every: 20ms, add: { counter: 1 }, set: { result: 1, card: random, door: 2 }, stamp: time, burst: 7 }
              - profile: \(Self.devices)/lift-monitor.yaml
                unit: 1
                tcp: { port: 0 }
                actions:
                  - { every: 30ms, set: { fault_code: 21, trapped: 1 }, for: 10ms }
            """, file: "sim.yaml")
        let host = SimulatorHost(config: config)
        try host.start()
        defer { host.stop() }
        let reader = host.device(unit: 3)!
        let deadline = ContinuousClock.now + .seconds(10)
        while (reader.mapValue("counter") ?? 0) < 14, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect((reader.mapValue("counter") ?? 0) % 7 == 0 && (reader.mapValue("counter") ?? 0) >= 14, "swipes come in bursts of 7")
        #expect(reader.mapValue("result") == 1 && reader.mapValue("door") == 2)
        let lift = host.device(unit: 1)!
        var sawFault = false, sawCleared = false
        while !(sawFault && sawCleared), ContinuousClock.now < deadline {
            if lift.mapValue("fault_code") == 21 { sawFault = true } else if sawFault { sawCleared = true }
            Thread.sleep(forTimeInterval: 0.002)
        }
        #expect(sawFault && sawCleared, "the fault comes and goes")
        #expect(throws: ConfigurationError.self) {
            _ = try SimulatorConfig.parse(yaml: """
                devices:
                  - { profile: \(Self.devices)/turnstile.yaml, tcp: { port: 0 }, actions: [{ every: 1s, add: { entrys: 1 } }] }
                """, file: "bad.yaml")
        }
    }
}
