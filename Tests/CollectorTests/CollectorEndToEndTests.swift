import AccessModel
import Collector
import Foundation
import Logging
import Testing
import TestSupport

/// `accessgw collect` against a real PostgreSQL 15 and a real mosquitto (SPEC 4.4). Serialized: each test starts
/// its own cluster, broker and collectors, and the machine's two cores are shared.
@Suite(.serialized) struct CollectorEndToEndTests {
    static let epoch = CollectorHarness.epoch

    @Test func everyEventIsStoredOnceWithItsColumnsAndReceiptedSigned() async throws {
        let centre = try await CollectorHarness()
        let collector = try await centre.startCollector(shareGroup: nil)
        centre.publish(1...20)
        try await centre.waitForRows(20)
        let receipt = try await centre.waitForReceipt(through: 20)
        #expect(receipt.topic == "accessgw/site-a/gateway/gw-01/receipt")
        #expect(receipt.validSignature)
        #expect(receipt.ranges.isEmpty)
        #expect(receipt.payload.hasPrefix(#"{"issuer":"pm-central","time":""#))
        #expect(receipt.payload.contains(#""epoch":"9f3a1c0d","through":20,"ranges":[]}"#))
        let row = try centre.sql("""
            SELECT source, type, time AT TIME ZONE 'UTC', site, gateway, device, gwepoch, gwseq, event->'data'->>'person'
            FROM events WHERE id = '\(CollectorHarness.eventID(7))'
            """)
        #expect(row == "/accessgw/site-a/door-1|access.granted|2026-12-07 08:00:00|site-a|gw-01|door-1|9f3a1c0d|7|P-0012")

        // The same events again, as a gateway resends what no receipt covered yet: nothing changes.
        centre.publish(1...20)
        centre.publish(topic: "accessgw/site-a/door-1/state", payload: #"{"door":"closed","online":true}"#)
        centre.publish(topic: "accessgw/site-a/gateway/gw-01/status", payload: #"{"state":"online"}"#)
        try await waitUntil("state and status stored") { (try? centre.count("SELECT count(*) FROM gateway_status WHERE state = 'online'")) == 1 }
        #expect(try centre.sql("SELECT state->>'door' FROM device_state WHERE site = 'site-a' AND device = 'door-1'") == "closed")
        #expect(try centre.count() == 20)
        collector.stop()
        #expect(collector.text.contains("collect.duplicates=20"), "\(collector.text.suffix(2000))")
        #expect(collector.text.contains("collect.stored=20"))
        await centre.stopAll()
    }

    @Test func aConflictKeepsTheFirstPayloadAndIsLoggedWithBothSources() async throws {
        let centre = try await CollectorHarness()
        let collector = try await centre.startCollector(shareGroup: nil)
        centre.publish(1...1)
        try await centre.waitForRows(1)
        // Same id, another payload, from another source (a misconfigured gateway reusing a site name).
        let forged = CollectorHarness.event(1, device: "door-9", id: CollectorHarness.eventID(1), person: "P-9999")
        centre.publish(topic: CollectorHarness.topic(device: "door-9"), payload: forged)
        try await waitUntil("the conflict recorded") { (try? centre.count("SELECT count(*) FROM conflicts")) == 1 }
        #expect(try centre.sql("SELECT event->'data'->>'person' FROM events") == "P-0012")
        #expect(try centre.sql("SELECT first_source || ' ' || second_source FROM conflicts")
                == "/accessgw/site-a/door-1 /accessgw/site-a/door-9")
        try await waitUntil("the conflict logged") { collector.text.contains("conflict: event") }
        let line = collector.text.split(separator: "\n").first { $0.contains("conflict: event") } ?? ""
        #expect(line.contains("/accessgw/site-a/door-1") && line.contains("/accessgw/site-a/door-9"), "\(line)")
        collector.stop()
        #expect(collector.text.contains("collect.conflicts=1"))
        await centre.stopAll()
    }

    @Test func anErasureDeletesTheEventForGoodAndAnExpiryFillsItsPlaces() async throws {
        let centre = try await CollectorHarness()
        try await centre.startCollector(shareGroup: nil)
        centre.publish(1...5)
        try await centre.waitForRows(5)
        let erased = CollectorHarness.eventID(3)
        // accessgw forget: a gateway.erased event with the erased event's gwseq and data.erases.
        let erasure = CollectorHarness.event(3, device: "gateway", type: "gateway.erased", id: "site-a/gateway/g/gw-01/9f3a1c0d.900",
                                             data: #","erases":"\#(erased)""#)
        centre.publish(topic: CollectorHarness.topic(device: "gateway", type: "gateway.erased"), payload: erasure)
        try await waitUntil("the erased event deleted") { (try? centre.count("SELECT count(*) FROM events WHERE id = '\(erased)'")) == 0 }
        // A late copy of the erased event (a broker's queue, a resend) is not stored again.
        centre.publish(3...3)
        // Places 6 and 7 were deleted unconfirmed by the gateway; 8 is the report, 9-10 follow.
        let expiry = CollectorHarness.event(8, device: "gateway", type: "gateway.events_unconfirmed_expired",
                                            id: "site-a/gateway/g/gw-01/9f3a1c0d.901", data: #","count":2,"from_gwseq":6,"to_gwseq":7"#)
        centre.publish(topic: CollectorHarness.topic(device: "gateway", type: "gateway.events_unconfirmed_expired"), payload: expiry)
        centre.publish(9...10)
        try await centre.waitForReceipt(through: 10)
        #expect(try centre.count("SELECT count(*) FROM events WHERE id = '\(erased)'") == 0)
        #expect(try centre.count("SELECT count(*) FROM events WHERE gwseq = 3") == 1)  // the erasure fills the place
        #expect(try centre.count("SELECT count(*) FROM erased_events") == 1)
        await centre.stopAll()
    }

    @Test func aGapIsLeftOutOfThroughAndTheRunsAboveItBecomeRanges() async throws {
        let centre = try await CollectorHarness()
        try await centre.startCollector(shareGroup: nil)
        centre.publish(1...3)
        centre.publish(5...6)
        centre.publish(9...9)
        try await centre.waitForRows(6)
        let receipt = try await eventually("a receipt with ranges") { centre.receipts.last { $0.ranges == [[5, 6], [9, 9]] } }
        #expect(receipt.through == 3)
        centre.publish(4...4)
        try await centre.waitForReceipt(through: 6)
        await centre.stopAll()
    }

    @Test func aCollectorKilledMidBatchLosesNothingAndReceiptsOnlyWhatItCommitted() async throws {
        let centre = try await CollectorHarness()
        // A batch waits 3 s for more events: the kill lands while 11-20 are received but not committed.
        let first = try await centre.startCollector(shareGroup: nil, batchWait: "3s", logLevel: "trace")
        centre.publish(1...10)
        try await centre.waitForReceipt(through: 10, timeout: .seconds(30))
        centre.publish(11...20)
        try await waitUntil("11-20 received") { first.text.components(separatedBy: "received PUBLISH").count > 20 }
        first.stop(signal: SIGKILL)
        #expect(try centre.count() == 10)
        #expect(centre.receipts.allSatisfy { $0.through <= 10 && $0.ranges.isEmpty })
        // A new collector; the gateway sends again what no receipt covers (SPEC 4.3).
        try await centre.startCollector("central-1b", shareGroup: nil)
        centre.publish(11...20)
        try await centre.waitForRows(20)
        try await centre.waitForReceipt(through: 20)
        #expect(try centre.count("SELECT count(DISTINCT gwseq) FROM events") == 20)
        await centre.stopAll()
    }

    @Test func postgresKilledAndRestartedIsSaidOnceAndCaughtUp() async throws {
        let centre = try await CollectorHarness()
        let collector = try await centre.startCollector(shareGroup: nil)
        centre.publish(1...10)
        try await centre.waitForReceipt(through: 10)
        centre.postgres.kill()
        centre.publish(11...30)
        try await waitUntil("the collector noticed", timeout: .seconds(20)) { collector.text.contains("collect.database_unreachable") }
        try await Task.sleep(for: .seconds(4))
        #expect(collector.isRunning)
        #expect(centre.receipts.allSatisfy { $0.through <= 10 }, "a receipt for events not stored")
        try centre.postgres.start()
        try await centre.waitForRows(30, timeout: .seconds(40))
        try await centre.waitForReceipt(through: 30)
        try await waitUntil("the recovery logged") { collector.text.contains("takes batches again") }
        let complaints = collector.text.split(separator: "\n").filter {
            $0.contains("log.kind=collect.database_unreachable") && !$0.contains("log.suppressed")
        }
        #expect(complaints.count == 1, "said once: \(complaints)")
        await centre.stopAll()
    }

    @Test func theCentralBrokerKilledAndRestartedLosesNothing() async throws {
        let centre = try await CollectorHarness()
        let collector = try await centre.startCollector(shareGroup: nil)
        centre.publish(1...10)
        try await centre.waitForReceipt(through: 10)
        centre.broker.crash()
        try await Task.sleep(for: .seconds(1))
        try centre.broker.restart()
        try await waitUntil("the test client reconnected", timeout: .seconds(20)) { centre.gateways.isConnected }
        try await waitUntil("the collector reconnected", timeout: .seconds(30)) {
            collector.text.components(separatedBy: "connected to MQTT broker").count >= 3
        }
        try await Task.sleep(for: .milliseconds(500))
        centre.publish(11...20)
        try await centre.waitForRows(20)
        try await centre.waitForReceipt(through: 20)
        #expect(collector.isRunning)
        await centre.stopAll()
    }

    @Test func twoCollectorsShareTheLoadAndOneCarriesOnAlone() async throws {
        let centre = try await CollectorHarness()
        let a = try await centre.startCollector("central-a")
        let b = try await centre.startCollector("central-b")
        centre.publish(1...40)
        try await centre.waitForRows(40)
        b.stop()
        let storedByB = b.text.split(separator: "\n").last { $0.contains("collector stopped") }
            .flatMap { $0.split(separator: " ").first { $0.hasPrefix("collect.stored=") } }
            .flatMap { Int($0.dropFirst("collect.stored=".count)) } ?? -1
        #expect((1..<40).contains(storedByB), "both collectors took events (b stored \(storedByB))")
        centre.publish(41...80)
        try await centre.waitForRows(80)
        try await centre.waitForReceipt(through: 80)
        #expect(a.isRunning)
        await centre.stopAll()
    }

    @Test func theSchemaIsMigratedFromThePreviousVersion() async throws {
        let postgres = try PostgresCluster()
        try postgres.createDatabase("old")
        // A database as version 1 of the collector left it, with an event in it.
        for statement in CollectorSchema.migrations[0].statements { try postgres.psql("old", statement) }
        try postgres.psql("old", "CREATE TABLE accessgw_schema (version integer NOT NULL); INSERT INTO accessgw_schema VALUES (1)")
        try postgres.psql("old", """
            INSERT INTO events (id, source, type, site, device, event) VALUES ('s/d/1.1/1', '/accessgw/s/d', 't', 's', 'd', '{"id":"s/d/1.1/1"}')
            """)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let store = EventStore(settings: try #require(CollectorConfiguration.databaseSettings(url: postgres.url(database: "old"))), logger: logger)
        #expect(try await store.schemaVersion() == CollectorSchema.version)
        await store.disconnect()
        #expect(try postgres.psql("old", "SELECT version FROM accessgw_schema") == "\(CollectorSchema.version)")
        #expect(try postgres.psql("old", "SELECT id FROM events") == "s/d/1.1/1")
        #expect(try postgres.psql("old", "SELECT count(*) FROM erased_events") == "0")
        #expect(try postgres.psql("old", "SELECT indexname FROM pg_indexes WHERE indexname = 'events_place'") == "events_place")
        // A database newer than this collector is refused, not written into.
        try postgres.psql("old", "UPDATE accessgw_schema SET version = \(CollectorSchema.version + 1)")
        let newer = EventStore(settings: try #require(CollectorConfiguration.databaseSettings(url: postgres.url(database: "old"))), logger: logger)
        await #expect(throws: StoreError.self) { try await newer.schemaVersion() }
        postgres.stop()
    }
}
