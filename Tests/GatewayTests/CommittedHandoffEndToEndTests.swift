import Foundation
import Simulators
import Testing
import TestSupport

/// Issue 7 (end to end >= 0.8): the journal writer hands committed events to the publisher in memory; a broker
/// outage suspends the hand-off, so what is committed meanwhile is read back from the journal. Both paths, and
/// the read-back path alone (`ACCESSGW_JOURNAL_READBACK=1`), must deliver every event exactly once, in order.
@Suite("end to end: in-memory hand-off and journal read-back across a broker outage", .serialized)
struct CommittedHandoffEndToEndTests {
    @Test(arguments: [false, true])
    func everyEventArrivesExactlyOnceThroughMemoryAndReadBack(forceReadBack: Bool) async throws {
        let harness = try GatewayHarness(broker: .init(persistent: true))
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1), SimulatedDevice(kind: .plateReader, unit: 2),
                                          SimulatedDevice(kind: .elevator, unit: 3)])
        let port = freeLoopbackPort()
        try harness.configure(buses: simulator.busYAML, devices: EndToEndTests.devicesYAML, metricsListen: "127.0.0.1:\(port)")
        // A persistent session on a persistent broker: the subscriber misses nothing across the restart.
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/device.restarted", on: harness.broker,
                                                         sessionID: "handoff-\(forceReadBack)")
        try await harness.start(environment: forceReadBack ? ["ACCESSGW_JOURNAL_READBACK": "1"] : [:])
        func record(_ rounds: Range<Int>) {
            for round in rounds {
                for device in simulator.devices { device.record(code: 33, value: UInt32(round)) }
            }
        }
        func metric(_ name: String) async -> Double? {
            let text = try? await SystemdIntegrationTests.get("http://127.0.0.1:\(port)/metrics").body
            return text?.split(separator: "\n").first { $0.hasPrefix(name + " ") }?.split(separator: " ").last.flatMap { Double($0) }
        }
        let fromMemory = #"accessgw_publisher_events_total{source="memory"}"#
        let fromJournal = #"accessgw_publisher_events_total{source="journal"}"#

        // Connected: delivered (from memory unless forced to read back), every PUBACK recorded.
        record(0..<20)
        _ = try await subscriber.waitForEvents("the first 60 events", timeout: .seconds(30)) { $0.filter { $0.seq != nil }.count >= 60 }
        try await waitUntil("every event marked published") { await metric("accessgw_journal_pending_events") == 0 }
        let memoryBeforeOutage = await metric(fromMemory) ?? 0

        // Outage: journalled meanwhile, read back from the journal once the broker is back.
        harness.broker.stop()
        record(20..<40)
        try await waitUntil("40 events per device acknowledged while the broker is down") {
            simulator.devices.allSatisfy { $0.logStatus.ack == 40 }
        }
        try harness.broker.restart()
        _ = try await subscriber.waitForEvents("120 events after the broker came back", timeout: .seconds(40)) { $0.filter { $0.seq != nil }.count >= 120 }
        let journalAfterOutage = await metric(fromJournal) ?? 0

        // Connected again: the hand-off takes over from the read-back.
        record(40..<60)
        let events = try await subscriber.waitForEvents("all 180 events", timeout: .seconds(30)) { $0.filter { $0.seq != nil }.count >= 180 }
        try await waitUntil("every event marked published") { await metric("accessgw_journal_pending_events") == 0 }
        for device in ["door-3e", "gate-1", "lift-2"] {
            let seqs = events.filter { $0.device == device }.compactMap(\.seq)
            #expect(seqs == Array(1...60), "\(device): each event exactly once, in device order")
        }
        #expect(Set(events.map(\.id)).count == events.count, "one id per event, none repeated")
        let memory = await metric(fromMemory) ?? 0, journal = await metric(fromJournal) ?? 0
        if forceReadBack {
            #expect(memory == 0, "ACCESSGW_JOURNAL_READBACK=1 sends nothing from memory")
            #expect(journal >= 180)
        } else {
            #expect(memoryBeforeOutage >= 30, "most events before the outage came from memory (\(memoryBeforeOutage))")
            #expect(journalAfterOutage >= 60, "the outage's 60 events were read back (\(journalAfterOutage))")
            #expect(memory - memoryBeforeOutage >= 30, "after the outage the hand-off took over again (\(memory))")
        }
        await #expect(harness.stop() == 0)
    }
}
