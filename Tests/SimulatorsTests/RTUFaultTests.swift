import Foundation
import Simulators
import Testing
import TestSupport

/// A raw master on the other end of the pty pair, for CRC and broadcast checks mbpoll cannot make.
final class RawSerialMaster {
    let fd: Int32

    init(path: String) throws {
        fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK)
        guard fd >= 0 else { throw SimulatorError("cannot open \(path)") }
        var tio = termios()
        tcgetattr(fd, &tio)
        cfmakeraw(&tio)
        tcsetattr(fd, TCSANOW, &tio)
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) } }

    /// Reads until `count` bytes arrived or `timeout` passed.
    func receive(count: Int, timeout: Duration = .seconds(1)) -> [UInt8] {
        let deadline = ContinuousClock.now + timeout
        var got: [UInt8] = []
        while got.count < count, ContinuousClock.now < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 20) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 256)
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n > 0 { got += buffer.prefix(n) }
        }
        return got
    }
}

@Suite("RTU framing and faults on a pseudo-terminal")
struct RTUFaultTests {
    static let readKind = CRC16.appending(to: [2, 0x03, 0, 0, 0, 1])

    @Test func corruptCRCFaultSendsAReplyMbpollRejects() async throws {
        let pair = try await SerialPair.start()
        defer { pair.stop() }
        let host = try SimulatorHost.startRTU(path: pair.deviceEnd, units: [(.faceDoor, 1), (.plateReader, 2)])
        defer { host.stop() }
        host.device(unit: 2)?.faults = DeviceFaults(corruptCRCProbability: 1)
        let master = try RawSerialMaster(path: pair.masterEnd)
        master.send(Self.readKind)
        let reply = master.receive(count: 7)
        #expect(reply.count == 7 && Array(reply.prefix(5)) == [2, 3, 2, 0, 2] && !CRC16.isValid(reply))
        host.device(unit: 2)?.faults = .none
        master.send(Self.readKind)
        #expect(CRC16.isValid(master.receive(count: 7)))
    }

    @Test func requestWithBadCRCIsIgnoredAndCounted() async throws {
        let pair = try await SerialPair.start()
        defer { pair.stop() }
        let host = try SimulatorHost.startRTU(path: pair.deviceEnd, units: [(.plateReader, 2)])
        defer { host.stop() }
        let master = try RawSerialMaster(path: pair.masterEnd)
        var bad = Self.readKind
        bad[7] ^= 0x55
        master.send(bad)
        #expect(master.receive(count: 1, timeout: .milliseconds(200)).isEmpty)
        #expect(host.rtuServer(path: pair.deviceEnd)?.statistics.crcErrors == 1)
        master.send(Self.readKind)
        #expect(master.receive(count: 7) == CRC16.appending(to: [2, 3, 2, 0, 2]))
    }

    @Test func broadcastWriteIsExecutedByEveryUnitWithoutReply() async throws {
        let pair = try await SerialPair.start()
        defer { pair.stop() }
        let host = try SimulatorHost.startRTU(path: pair.deviceEnd, units: [(.faceDoor, 1), (.elevator, 3)])
        defer { host.stop() }
        let master = try RawSerialMaster(path: pair.masterEnd)
        let now = UInt32(Date().timeIntervalSince1970)
        for device in host.devices { device.setClock(offsetSeconds: -600, synchronised: false) }
        master.send(CRC16.appending(to: [0] + RawModbusClient.writeMultiplePDU(
            address: 12, values: [UInt16(now >> 16), UInt16(now & 0xFFFF)])))
        #expect(master.receive(count: 1, timeout: .milliseconds(200)).isEmpty)
        let words = try await Mbpoll.readRTU(path: pair.masterEnd, unit: 3, address: 12, count: 3)
        #expect(abs(Int64(words.u32(0)) - Int64(now)) <= 2 && words[2] & 8 == 0)
    }

    @Test func pacedLineTakesThePhysicalFrameTime() async throws {
        let pair = try await SerialPair.start()
        defer { pair.stop() }
        let settings = SerialLineSettings(baud: 9600, pace: true)
        let host = try SimulatorHost.startRTU(path: pair.deviceEnd, settings: settings, units: [(.faceDoor, 1)],
                                              latencyMilliseconds: 10)
        defer { host.stop() }
        let master = try RawSerialMaster(path: pair.masterEnd)
        let request = CRC16.appending(to: [1, 0x03, 0, 100, 0, 106])
        let start = ContinuousClock.now
        master.send(request)
        let reply = master.receive(count: 5 + 212, timeout: .seconds(2))
        let elapsed = ContinuousClock.now - start
        #expect(reply.count == 217 && CRC16.isValid(reply))
        // 8 + 217 characters of 10 bits at 9600 baud, 3.5 characters of silence and 10 ms latency: about 248 ms.
        let physical = Double(8 + 217) * 10 / 9600 + 3.5 * 10 / 9600 + 0.010
        #expect(elapsed >= .milliseconds(Int(physical * 1000)))
    }
}
