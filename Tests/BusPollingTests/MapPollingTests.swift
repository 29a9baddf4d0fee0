import AccessModel
import BusPolling
import DeviceProfiles
import Foundation
import Simulators
import Testing
import TestSupport

/// A real bus poller against map-2 simulators (SPEC 3.5) over a real socket: what the rules make of values a
/// device shows between polls and across an outage (issue 19 item 3).
@Suite("bus poller and map-2 rules")
struct MapPollingTests {
    static func device(_ profile: String) throws -> (SimulatedDevice, PolledMap) {
        let loaded = try ProfileLibrary(directories: [PollerHarness.repository.appendingPathComponent("Devices").path]).profile(profile)
        return (SimulatedDevice(profile: loaded, unit: 1), try #require(loaded.map))
    }

    /// The derived emissions of the harness's device, as (event type or variant, number).
    static func emissions(_ harness: PollerHarness, _ map: PolledMap) -> [(type: String, number: Int64)] {
        harness.all.filter { $0.origin == .derived }.map { record in
            let emission = RuleEngine.Emission(record: record)
            switch emission.variant {
            case .counterReset: return ("device.counter_reset", emission.number)
            case .eventsLost: return ("gateway.events_lost", emission.number)
            case .event: return (map.rules[emission.rule].outcome?.type ?? "?", emission.number)
            }
        }
    }

    /// A lift monitor's fault code read mid-update (0 → 0x00A1 → 0x0021) lost the fault alarm: 0 → invalid did
    /// not match `from: 0 to: nonzero`, and invalid → 21 did not either.
    @Test func aFaultCodeThroughANonBCDValueRaisesTheFault() async throws {
        let (lift, map) = try Self.device("lift-monitor")
        let server = try TCPServerBox([lift])
        let harness = try PollerHarness(endpoint: .tcp(host: "127.0.0.1", port: Int(server.server.port)), units: [1],
                                        profile: "lift-monitor")
        harness.start()
        let code = map.blocks[1].imageOffset + 1
        func polls(_ count: Int) async throws {
            let requests = server.server.statistics.requests
            try await waitUntil("\(count) more requests") { server.server.statistics.requests >= requests + count }
        }
        try await polls(6)
        lift.updateMap { $0.image[code] = 0x00A1 }
        try await polls(6)
        lift.updateMap { $0.image[code] = 0x0021 }
        try await waitUntil("the fault derived") { Self.emissions(harness, map).contains { $0.type == "elevator.fault" } }
        harness.stop()
        #expect(Self.emissions(harness, map).map(\.type) == ["elevator.fault"])
        #expect(harness.log.count(containing: "no valid value in fault_code") >= 1)
        withExtendedLifetime(server) {}
    }

    /// A turnstile whose counter grew by more than `max_step` while the device could not be read is reported with its
    /// passages, not as a reset: the allowed growth scales with the poll intervals that passed.
    @Test func passagesDuringAnOutageAreCountedNotTakenForAReset() async throws {
        let (gate, map) = try Self.device("turnstile")
        gate.updateMap { $0.set("entries", 1_000) }
        let server = try TCPServerBox([gate])
        let harness = try PollerHarness(endpoint: .tcp(host: "127.0.0.1", port: Int(server.server.port)), units: [1],
                                        profile: "turnstile", pollMillis: 20)
        harness.start()
        var requests = server.server.statistics.requests
        try await waitUntil("a baseline poll") { server.server.statistics.requests >= requests + 3 }
        gate.faults = DeviceFaults(noReplyProbability: 1)
        try await waitUntil("the gate offline") { harness.count(.deviceOffline) == 1 }
        try await Task.sleep(for: .milliseconds(400))  // ≥ 20 poll intervals of 20 ms pass without a read
        gate.updateMap { $0.set("entries", 1_000 + 30_000) }
        gate.faults = .none
        try await waitUntil("the passages derived") { !Self.emissions(harness, map).isEmpty }
        requests = server.server.statistics.requests
        try await waitUntil("a few more polls") { server.server.statistics.requests >= requests + 3 }
        harness.stop()
        #expect(Self.emissions(harness, map).map(\.type) == ["passage.counted"])
        #expect(Self.emissions(harness, map).first?.number == 30_000)
        withExtendedLifetime(server) {}
    }
}
