import AccessModel
import Foundation
import Simulators
import Testing
import TestSupport

@Suite("Register map over TCP")
struct RegisterMapTests {
    @Test func windowAckAndTooHighAckAgainstARealSocket() async throws {
        let (host, device, port) = try SimulatorHost.startTCP(.faceDoor)
        defer { host.stop() }
        for i in 1...5 { device.record(code: 1, point: 1, direction: 1, value: 900 + UInt32(i), subject: "P-000\(i)") }
        let header = try await Mbpoll.readTCP(port: port, address: 100, count: 10)
        #expect(header.u32(0) == 5 && header.u32(2) == 1 && header[4] == 1 && header[5] == 3)
        #expect(header.u32(6) == 0 && header[8] == 5)
        let client = try RawModbusClient(port: port)
        #expect(client.write(address: 106, values: [0, 2]) == .written)
        guard case let .registers(block) = client.read(address: 100, count: 106) else { Issue.record("no block"); return }
        #expect(block.u32(10) == 3 && block.u32(42) == 4 && block.u32(74) == 5)
        #expect(block[15] == 1 && block.u32(18) == 903)
        #expect(client.write(address: 106, values: [0, 6]) == .exception(3))
        #expect(client.write(address: 106, values: [0, 5]) == .written)
        guard case let .registers(empty) = client.read(address: 100, count: 10) else { Issue.record("no header"); return }
        #expect(empty[5] == 0 && empty[8] == 0)
    }

    @Test func overflowAndRebootAreVisibleInTheHeader() throws {
        let (host, device, port) = try SimulatorHost.startTCP(.elevator, capacity: 100)
        defer { host.stop() }
        device.overflowLog(by: 20)
        let client = try RawModbusClient(port: port)
        guard case let .registers(h) = client.read(address: 100, count: 10) else { Issue.record("no header"); return }
        #expect(h.u32(0) == 120 && h.u32(2) == 21 && h[9] & 0b11 == 0b11)
        #expect(client.write(address: 106, values: [0, 1]) == .written)
        guard case let .registers(acked) = client.read(address: 100, count: 12) else { Issue.record("no header"); return }
        #expect(acked.u32(6) == 20 && acked[9] & 1 == 0 && acked.u32(10) == 21)
        device.reboot()
        guard case let .registers(r) = client.read(address: 100, count: 16) else { Issue.record("no header"); return }
        #expect(r.u32(0) == 1 && r.u32(2) == 1 && r[4] == 2 && r.u32(6) == 0 && r[15] == 33)
    }

    @Test func plateTextRoundTripsThroughGB18030Registers() async throws {
        let (host, device, port) = try SimulatorHost.startTCP(.plateReader)
        defer { host.stop() }
        device.record(code: 1, point: 1, direction: 1, value: 960, extra: 1 << 16 | 1, subject: "云A12345")
        device.record(code: 1, point: 1, direction: 1, value: 930, extra: 1 << 16 | 5, subject: "云AD12345")
        let words = try await Mbpoll.readTCP(port: port, address: 110, count: 64)
        func subject(_ record: Int) -> [UInt8] {
            words[(record * 32 + 12)..<(record * 32 + 32)].flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        }
        #expect(Array(subject(0).prefix(2)) == [0xD4, 0xC6])  // 云 in GB18030
        #expect(try TextEncoding.gb18030.decode(subject(0)) == "云A12345")
        #expect(try TextEncoding.gb18030.decode(subject(1)) == "云AD12345")
        #expect(words.u32(32 + 10) == 1 << 16 | 5)
    }

    @Test func commandBlockRecordsCode8WithTheCommandIDAndKeepsLastCommandID() async throws {
        let (host, device, port) = try SimulatorHost.startTCP(.elevator)
        defer { host.stop() }
        let client = try RawModbusClient(port: port)
        #expect(client.write(address: 30, values: [1, 3, 0x0001, 0xE240]) == .written)
        guard case let .registers(block) = client.read(address: 20, count: 16) else { Issue.record("no state"); return }
        #expect(block[10] == 0 && block.u32(12) == 123_456 && block.u32(14) == 123_456)   // HR 30 back to 0; 34–35
        #expect(block[1] == 1)   // moving up from floor 1
        let event = try #require(device.event(seq: 1))
        #expect(event.code == 8 && event.extra == 123_456 && event.point == 3)
        // The car reaches the called floor and opens its door.
        try await waitUntil("the car at floor 3 with its door open", timeout: .seconds(5)) {
            guard case let .registers(state) = client.read(address: 20, count: 3) else { return false }
            return state == [3, 0, 2]
        }
        #expect(client.write(address: 30, values: [9, 0, 0, 1]) == .exception(3))
        #expect(client.write(address: 30, values: [1, UInt16(bitPattern: -11), 0, 2]) == .exception(3))
        #expect(client.write(address: 30, values: [1, UInt16(bitPattern: -2), 0, 3]) == .written)
        #expect(device.lastExecutedCommandID == 3)
        try await waitUntil("the car at floor -2", timeout: .seconds(5)) {
            guard case let .registers(state) = client.read(address: 20, count: 1) else { return false }
            return state == [UInt16(bitPattern: -2)]
        }
    }

    @Test func aRepeatedCommandIDIsAnsweredButNotExecutedAgain() throws {
        let (host, device, port) = try SimulatorHost.startTCP(.plateReader)
        defer { host.stop() }
        let client = try RawModbusClient(port: port)
        #expect(client.write(address: 30, values: [1, 0, 0, 41]) == .written)
        #expect(client.write(address: 30, values: [1, 0, 0, 41]) == .written)
        #expect(client.write(address: 30, values: [1, 0, 0, 41]) == .written)
        #expect(device.executedCommandCount == 1)
        #expect(device.stateRegisters[0] == 1)   // barrier open
        #expect(device.event(seq: 2) == nil)
        #expect(client.write(address: 30, values: [2, 0, 0, 42]) == .written)
        #expect(device.stateRegisters[0] == 0)   // closed
        #expect(device.executedCommandCount == 2)
        #expect(client.write(address: 30, values: [3, 0, 0, 43]) == .exception(3))
        #expect(device.lastExecutedCommandID == 42)
    }

    @Test func faceDoorOpenReleasesTheLockForItsConfiguredTime() async throws {
        var entry = SimulatorConfig.Device(kind: .faceDoor, unit: 1, transport: .tcp(host: "127.0.0.1", port: 0))
        entry.lockReleaseMilliseconds = 300
        let host = SimulatorHost(config: SimulatorConfig(devices: [entry]))
        try host.start()
        defer { host.stop() }
        let device = host.devices[0], port = host.tcpPort(of: device) ?? 0
        let client = try RawModbusClient(port: port)
        #expect(client.write(address: 30, values: [1, 5, 0, 76]) == .exception(3))   // no door 5
        #expect(client.write(address: 30, values: [1, 1, 0, 77]) == .written)
        guard case let .registers(state) = client.read(address: 21, count: 1) else { Issue.record("no state"); return }
        #expect(state == [1])   // released
        #expect(device.event(seq: 1)?.extra == 77)
        try await waitUntil("the lock locked again", timeout: .seconds(5)) {
            guard case let .registers(state) = client.read(address: 21, count: 1) else { return false }
            return state == [0]   // locked again
        }
    }

    @Test func badRequestsAnswerTheDocumentedExceptions() throws {
        let (host, _, port) = try SimulatorHost.startTCP(.faceDoor)
        defer { host.stop() }
        let client = try RawModbusClient(port: port)
        #expect(client.request([0x04, 0, 0, 0, 1]) == .exception(1))
        #expect(client.read(address: 50, count: 1) == .exception(2))
        #expect(client.read(address: 100, count: 126) == .exception(3))
        #expect(client.write(address: 0, values: [2]) == .exception(2))
        #expect(client.request([0x06, 0, 106, 0, 1]) == .exception(2))
        #expect(client.read(unit: 9, address: 0, count: 1) == .exception(0x0B))
        #expect(client.read(unit: 255, address: 0, count: 1) == .registers([1]))
    }

    @Test func clockWriteSetsTheDeviceClockAndClearsNotSynchronised() throws {
        let (host, device, port) = try SimulatorHost.startTCP(.faceDoor)
        defer { host.stop() }
        device.setClock(offsetSeconds: -3600, synchronised: false)
        device.record(code: 1)
        let client = try RawModbusClient(port: port)
        guard case let .registers(before) = client.read(address: 100, count: 18) else { Issue.record("no"); return }
        #expect(before[9] & 4 == 4 && before[17] >> 8 == 1)
        let now = UInt32(Date().timeIntervalSince1970)
        #expect(client.write(address: 12, values: [UInt16(now >> 16), UInt16(now & 0xFFFF)]) == .written)
        guard case let .registers(id) = client.read(address: 12, count: 3) else { Issue.record("no"); return }
        #expect(abs(Int64(id.u32(0)) - Int64(now)) <= 1 && id[2] & 8 == 0)
    }
}
