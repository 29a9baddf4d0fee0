import Foundation
import Simulators
import Testing
import TestSupport

@Suite("Injected faults over TCP")
struct TCPFaultTests {
    @Test func responseDelayHoldsTheReplyBack() throws {
        let (host, device, port) = try SimulatorHost.startTCP(.faceDoor, faults: DeviceFaults(delayMilliseconds: 150))
        defer { host.stop() }
        let client = try RawModbusClient(port: port)
        let start = ContinuousClock.now
        #expect(client.read(address: 0, count: 1) == .registers([1]))
        #expect(ContinuousClock.now - start >= .milliseconds(150))
        device.faults = .none
        #expect(client.read(address: 0, count: 1) == .registers([1]))
    }

    @Test func noReplyFaultDropsRequestsAndMbpollTimesOut() async throws {
        let (host, device, port) = try SimulatorHost.startTCP(.plateReader, faults: DeviceFaults(noReplyProbability: 1))
        defer { host.stop() }
        let client = try RawModbusClient(port: port, timeout: .milliseconds(300))
        #expect(client.read(address: 0, count: 1) == .none)
        let result = try await Mbpoll.run(["-m", "tcp", "-p", "\(port)", "-a", "1", "-0", "-r", "0", "-c", "1", "-1",
                                     "-o", "0.3", "127.0.0.1"])
        #expect(result.output.contains("timeout") || result.output.contains("Connection timed out"))
        device.faults = .none
        await #expect(try Mbpoll.readTCP(port: port, address: 0, count: 1) == [2])
        #expect(host.tcpServer(of: device)?.statistics.dropped ?? 0 >= 2)
    }

    @Test func exceptionFaultAnswersTheConfiguredCode() throws {
        let (host, _, port) = try SimulatorHost.startTCP(.elevator, faults: DeviceFaults(exceptionCode: 4))
        defer { host.stop() }
        let client = try RawModbusClient(port: port)
        client.send([0x12, 0x34, 0, 0, 0, 6, 1, 0x03, 0, 0, 0, 1])
        #expect(client.receive() == [0x12, 0x34, 0, 0, 0, 3, 1, 0x83, 0x04])
    }

    @Test func connectionIsDroppedAfterNRequestsAndOnDemand() throws {
        let (host, device, port) = try SimulatorHost.startTCP(.faceDoor, faults: DeviceFaults(dropConnectionAfter: 3))
        defer { host.stop() }
        let client = try RawModbusClient(port: port)
        #expect(client.read(address: 0, count: 1) == .registers([1]))
        #expect(client.read(address: 0, count: 1) == .registers([1]))
        #expect(client.read(address: 0, count: 1) == .none)
        #expect(client.isClosedByPeer())
        device.faults = .none
        let second = try RawModbusClient(port: port)
        #expect(second.read(address: 0, count: 1) == .registers([1]))
        device.dropConnectionOnNextRequest()
        #expect(second.read(address: 0, count: 1) == .none)
        let third = try RawModbusClient(port: port)
        #expect(third.read(address: 0, count: 1) == .registers([1]))
        host.tcpServer(of: device)?.dropConnections()
        #expect(third.isClosedByPeer())
    }

    @Test func malformedMBAPClosesOnlyThatConnectionAndIsCounted() throws {
        let (host, device, port) = try SimulatorHost.startTCP(.faceDoor)
        defer { host.stop() }
        let bad = try RawModbusClient(port: port)
        bad.send([0, 1, 0, 7, 0, 6, 1, 3, 0, 0, 0, 1])  // protocol id 7
        #expect(bad.isClosedByPeer())
        let truncated = try RawModbusClient(port: port)
        truncated.send([0, 1, 0])
        shutdown(truncated.fd, Int32(SHUT_WR))
        #expect(truncated.isClosedByPeer())
        let good = try RawModbusClient(port: port)
        #expect(good.request([0x03, 0, 0]) == .exception(3))
        #expect(good.read(address: 0, count: 1) == .registers([1]))
        let stats = try #require(host.tcpServer(of: device)?.statistics)
        #expect(stats.malformedFrames == 2)
    }
}
