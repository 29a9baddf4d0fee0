import AccessModel
import Foundation
import ModbusTransport
import Simulators
import Testing
import TestSupport

/// Runs blocking libmodbus calls on a thread of their own, as the bus pollers do.
func onBus<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await onDedicatedThread(body)
}

/// Runs `body` on a bus thread and returns how long it took and what it threw (nil when it returned).
func timedFailure(_ body: @escaping @Sendable () throws -> Void) async throws -> (seconds: Double, error: ModbusError?) {
    try await onBus {
        let start = ContinuousClock.now
        var failure: ModbusError?
        do { try body() } catch let error as ModbusError { failure = error }
        let elapsed = ContinuousClock.now - start
        return (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, failure)
    }
}

/// The identity block HR 0–15 as a test reads it: kind, map version and the ASCII serial.
struct Identity: Equatable, CustomStringConvertible {
    var kind: UInt16
    var mapVersion: UInt16
    var serial: String

    init(_ words: [UInt16]) {
        kind = words[0]
        mapVersion = words[1]
        let bytes = words[2..<10].flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }.filter { $0 != 0 }
        serial = String(decoding: bytes, as: UTF8.self)
    }

    init(of device: SimulatedDevice) {
        kind = device.kind.rawValue
        mapVersion = 1
        serial = device.serial
    }

    var description: String { "kind \(kind) map \(mapVersion) serial \(serial)" }
}

extension ModbusConnection {
    func identity(unit: UInt8) throws -> Identity { Identity(try readRegisters(unit: unit, address: 0, count: 16)) }
}

/// Three devices of the three kinds as units 1, 2, 3.
func threeKinds() -> [SimulatedDevice] {
    [SimulatedDevice(kind: .faceDoor, unit: 1), SimulatedDevice(kind: .plateReader, unit: 2),
     SimulatedDevice(kind: .elevator, unit: 3)]
}

/// A TCP server on a free loopback port serving `devices` (several units on one connection, like a TCP-to-RS-485 gateway).
final class TCPFixture: @unchecked Sendable {
    // @unchecked: the server is itself thread-safe; the connection is driven by one bus thread at a time.
    let server: ModbusTCPServer
    let devices: [SimulatedDevice]
    let connection: ModbusConnection

    init(_ devices: [SimulatedDevice], timeoutMillis: Int = 300) throws {
        self.devices = devices
        server = ModbusTCPServer(host: "127.0.0.1", port: 0, devices: devices)
        try server.start()
        connection = try ModbusConnection(bus: "lan", endpoint: .tcp(host: "127.0.0.1", port: Int(server.port)),
                                          responseTimeoutMillis: timeoutMillis)
    }

    deinit {
        connection.disconnect()
        server.stop()
    }
}

/// An RTU line on a socat pseudo-terminal pair at 9600 8N1: the simulators on one end, a libmodbus master on the other.
final class RTUFixture: @unchecked Sendable {
    // @unchecked: the server is itself thread-safe; the connection is driven by one bus thread at a time.
    let pair: SerialPair
    let server: ModbusRTUServer
    let devices: [SimulatedDevice]
    let connection: ModbusConnection

    /// `paced`: replies leave when a real 9600-baud line would have carried them (request, gap, latency, reply).
    init(_ devices: [SimulatedDevice], timeoutMillis: Int = 200, paced: Bool = false) async throws {
        self.devices = devices
        pair = try await SerialPair.start()
        server = ModbusRTUServer(path: pair.deviceEnd, settings: SerialLineSettings(baud: 9600, pace: paced), devices: devices)
        try server.start()
        connection = try ModbusConnection(bus: "b3-rs485", endpoint: .rtu(SerialLine(device: pair.masterEnd, baud: 9600)),
                                          responseTimeoutMillis: timeoutMillis)
    }

    deinit {
        connection.disconnect()
        server.stop()
        pair.stop()
    }
}

/// The two kinds of line the transport drives; tests that hold for both take one as an argument.
enum Line: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case tcp, rtu

    var testDescription: String { rawValue.uppercased() }

    /// Serves `devices` on a fresh line of this kind and returns the connection to it and the fixture to keep alive.
    func serve(_ devices: [SimulatedDevice], timeoutMillis: Int = 200) async throws -> (ModbusConnection, any AnyObject & Sendable) {
        switch self {
        case .tcp:
            let fixture = try TCPFixture(devices, timeoutMillis: timeoutMillis)
            return (fixture.connection, fixture)
        case .rtu:
            let fixture = try await RTUFixture(devices, timeoutMillis: timeoutMillis)
            return (fixture.connection, fixture)
        }
    }
}
