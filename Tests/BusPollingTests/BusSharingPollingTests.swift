import AccessModel
import BusPolling
import Foundation
import ModbusTransport
import Simulators
import Synchronization
import Testing
import TestSupport

/// Issue 19, items 4 and 11: a command to a device that answers reads but not the write, and probes of a dead
/// device, share the bus with the polls of the neighbours: at most one of their transactions between two polls,
/// and the poller's progress (the watchdog's proof) never stops.
@Suite("bus poller: commands and probes share the bus")
struct BusSharingPollingTests {
    @Test func aCommandWriteThatIsNeverAnsweredIsRetriedBetweenPollsAndTheNeighbourKeepsItsEvents() async throws {
        let mute = SimulatedDevice(kind: .faceDoor, unit: 1)
        mute.faults.ignoreCommandWrites = true
        let neighbour = SimulatedDevice(kind: .faceDoor, unit: 2)
        let server = try TCPServerBox([mute, neighbour])
        let harness = try PollerHarness(endpoint: .tcp(host: "127.0.0.1", port: Int(server.server.port)), units: [1, 2])
        harness.start()
        defer { harness.stop() }
        neighbour.record(code: 16, point: 1)
        try await waitUntil("the neighbour's first event acknowledged") { neighbour.logStatus.ack == 1 }

        let outcome = Mutex<CommandJob.Outcome?>(nil)
        let job = CommandJob(device: "dev-1", unit: 1, address: 30, code: 1, argument: 1, commandID: 77,
                             deadline: .now + .seconds(12)) { result in outcome.withLock { $0 = result } }
        harness.poller.submit(job)
        try await waitUntil("the first write attempt") { mute.requestCount > 0 && outcome.withLock { $0 } == nil }
        // While the command is retried, the neighbour's events are read and acknowledged, and the poller proves progress.
        var stalest: Int64 = 0
        for point in 2...4 { neighbour.record(code: 16, point: Int16(point)) }
        try await waitUntil("the neighbour's events 2-4 acknowledged", timeout: .seconds(11)) {
            stalest = max(stalest, monotonicMillis() - harness.poller.lastProgressMillis)
            return neighbour.logStatus.ack == 4
        }
        #expect(outcome.withLock { $0 } == nil, "the neighbour waited for the command's deadline")
        #expect(stalest < 5_000, "the poller made no progress for \(stalest) ms")

        let ended = try await eventually("the command's outcome", timeout: .seconds(30)) { outcome.withLock { $0 } }
        guard case let .failed(reason, _) = ended else {
            Issue.record("expected failed(no_reply), got \(ended)")
            return
        }
        #expect(reason == "no_reply")
        #expect(mute.executedCommandCount == 0)
        withExtendedLifetime(server) {}
    }

    @Test func aCommandRetriedUntilItsDeadlineAndAProbeTakeTurnsBetweenPolls() async throws {
        let mute = SimulatedDevice(kind: .faceDoor, unit: 1)
        mute.faults.ignoreCommandWrites = true
        let neighbour = SimulatedDevice(kind: .faceDoor, unit: 2)
        let server = try TCPServerBox([mute, neighbour])
        let harness = try PollerHarness(endpoint: .tcp(host: "127.0.0.1", port: Int(server.server.port)), units: [1, 2])
        harness.start()
        defer { harness.stop() }
        try await waitUntil("both polled") { mute.requestCount > 2 && neighbour.requestCount > 2 }
        let outcome = Mutex<CommandJob.Outcome?>(nil)
        harness.poller.submit(CommandJob(device: "dev-1", unit: 1, address: 30, code: 1, argument: 1, commandID: 78,
                                         deadline: .now + .seconds(12)) { result in outcome.withLock { $0 = result } })
        try await waitUntil("the first write attempt") { harness.log.count(containing: "command write failed") > 0 }
        let probed = Mutex<Bool>(false)
        harness.poller.onLine { connection in
            _ = try? connection.readRegisters(unit: 2, address: 0, count: 16)
            probed.withLock { $0 = true }
        }
        try await waitUntil("the probe's read", timeout: .seconds(11)) { probed.withLock { $0 } }
        #expect(outcome.withLock { $0 } == nil, "the probe waited for the command's deadline")
        _ = try await eventually("the command's outcome", timeout: .seconds(30)) { outcome.withLock { $0 } }
        withExtendedLifetime(server) {}
    }

    @Test func probeTransactionsOfADeadDeviceGoOneBetweenTwoPolls() async throws {
        let neighbour = SimulatedDevice(kind: .faceDoor, unit: 1)
        let dead = SimulatedDevice(kind: .faceDoor, unit: 2)
        dead.faults = DeviceFaults(noReplyProbability: 1)
        let server = try TCPServerBox([neighbour, dead])
        let harness = try PollerHarness(endpoint: .tcp(host: "127.0.0.1", port: Int(server.server.port)), units: [1])
        harness.start()
        defer { harness.stop() }
        try await waitUntil("the neighbour polled") { neighbour.requestCount > 2 }

        // Ten probe reads of the dead unit asked at once: each costs a timeout, and each waits for a poll.
        let seen = Mutex<[Int]>([])
        for _ in 0..<10 {
            harness.poller.onLine { connection in
                seen.withLock { $0.append(neighbour.requestCount) }
                _ = try? connection.readRegisters(unit: 2, address: 0, count: 16)
            }
        }
        let counts = try await eventually("ten probe reads", timeout: .seconds(30)) { () -> [Int]? in
            let counts = seen.withLock { $0 }
            return counts.count == 10 ? counts : nil
        }
        let starved = zip(counts, counts.dropFirst()).filter { $0 == $1 }.count
        #expect(starved == 0, "probe reads back to back without a poll between them: \(counts)")
        withExtendedLifetime(server) {}
    }
}
