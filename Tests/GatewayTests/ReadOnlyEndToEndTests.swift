import Foundation
import ModbusTransport
import Simulators
import Testing
import TestSupport

/// `run --read-only` (issue 11): beside a vendor platform that drains the devices' logs, the gateway polls and
/// publishes but never writes ack_seq, a clock or a command; every event says `read_only`, and the records the window
/// shows again and again are journalled and published once.
@Suite("end to end: run --read-only beside a vendor platform")
struct ReadOnlyEndToEndTests {
    @Test func ackSeqNeverMovesAndEveryEventArrivesOnceMarkedReadOnly() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let door = simulator.devices[0]
        door.setClock(offsetSeconds: 120, synchronised: true)
        try harness.configure(buses: simulator.busYAML,
                              devices: "  - { id: door-3e, profile: face-door, bus: lan, unit: 1, poll: 50ms, time_sync: true }",
                              gatewayExtra: "  host_clock: trusted")  // time_sync would set the clock at once
        let subscriber = try await Subscriber.subscribed(to: "accessgw/#", on: harness.broker)
        try await harness.start(arguments: ["--read-only"])
        for point in 1...3 { door.record(code: 16, point: Int16(point)) }
        _ = try await subscriber.waitForEvents("the 3 events the window shows") { events in
            events.filter { $0.device == "door-3e" && $0.seq != nil }.count >= 3
        }
        // Many polls later the same window has been read again and again: ack_seq untouched, nothing repeated.
        let requests = simulator.server.statistics.requests
        try await waitUntil("30 more requests") { simulator.server.statistics.requests >= requests + 30 }
        #expect(door.logStatus.ack == 0, "the gateway wrote ack_seq")

        // The vendor platform acknowledges 2: the window moves on to 3, 4, 5, of which 4 and 5 are new.
        let vendor = try ModbusConnection(bus: "vendor", endpoint: .tcp(host: "127.0.0.1", port: Int(simulator.server.port)),
                                          responseTimeoutMillis: 1000)
        try vendor.writeRegisters(unit: 1, address: 106, values: [0, 2])
        vendor.disconnect()
        for point in 4...5 { door.record(code: 16, point: Int16(point)) }
        _ = try await subscriber.waitForEvents("seq 5") { $0.contains { $0.device == "door-3e" && $0.seq == 5 } }
        let later = simulator.server.statistics.requests
        try await waitUntil("30 more requests") { simulator.server.statistics.requests >= later + 30 }

        let events = subscriber.events.filter { $0.device == "door-3e" }
        #expect(events.compactMap(\.seq) == [1, 2, 3, 4, 5], "each record once: \(events.map { ($0.type, $0.seq) })")
        #expect(door.logStatus.ack == 2, "only the vendor acknowledged")
        #expect(door.function23Requests == 0, "the profile says ack_with_read, but read-only writes nothing, with function 23 neither")
        #expect(subscriber.events.allSatisfy { $0.data["read_only"] as? Bool == true }, "every event says read_only")
        let skew = try #require(events.first { $0.type == "device.clock_skew" }, "the skew is still reported")
        #expect(skew.data["read_only"] as? Bool == true)
        let words = try door.readRegisters(address: 12, count: 2)
        let offset = Int64(UInt32(words[0]) << 16 | UInt32(words[1])) - Int64(Date().timeIntervalSince1970)
        #expect(abs(offset - 120) <= 2, "time_sync: true, but read-only leaves the clock alone")
        let journalled = try await harness.journalEvents(["--device", "door-3e", "--type", "door.*"])
        #expect(journalled.count == 5, "the journal holds each record once: \(journalled.count)")

        let status = try await harness.accessgw(["status", "--config", harness.configPath])
        #expect(status.output.contains("READ-ONLY"), "\(status.output)")
        await #expect(try harness.statusJSON()["status"].flatMap { ($0 as? [String: Any])?["read_only"] as? Bool } == true)
        await #expect(harness.stop() == 0)
    }
}
