import Foundation
import Simulators
import Testing
import TestSupport

/// The whole chain of SPEC 4.3 and 4.4 as a property company runs it: a door → `accessgw run` → mosquitto →
/// `accessgw collect` → PostgreSQL, and the collector's signed receipt back to the gateway, which then holds
/// nothing unconfirmed. Both sides are the real binaries, configured from their files.
@Suite("end to end: gateway, collector, PostgreSQL and receipts", .serialized)
struct CentreEndToEndTests {
    @Test func everyEventIsStoredOnceAndTheCollectorsReceiptConfirmsIt() async throws {
        let postgres = try PostgresCluster()
        defer { postgres.stop() }
        try postgres.createDatabase("access")
        let harness = try GatewayHarness()
        let door = SimulatedDevice(kind: .faceDoor, unit: 1)
        let simulator = try TCPSimulator([door])
        let pm = try await CommandIssuer(id: "pm-central", broker: harness.broker, directory: harness.directory)
        let keyFile = harness.directory.appendingPathComponent("pm-central.key").path
        try pm.key.pem().write(toFile: keyFile, atomically: true, encoding: .utf8)
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML, mqttExtra: "  protocol: 5")
        try harness.enableRequests(from: pm, devices: #"["*"]"#, commands: "[receipt]",
                                   extra: ReceiptEndToEndTests.receiptsYAML(resendAfter: "5s"))
        let central = harness.directory.appendingPathComponent("central.yaml").path
        try """
            collector: { id: central-1, share_group: collectors }
            mqtt: { host: 127.0.0.1, port: \(harness.broker.port), keepalive: 5s }
            database: { url: "\(postgres.url(database: "access"))", batch_wait: 20ms }
            receipts: { issuer: pm-central, key_file: \(keyFile) }
            metrics: { listen: "off" }
            """.write(toFile: central, atomically: true, encoding: .utf8)
        let checked = try await harness.accessgw(["check", "--config", central])
        #expect(checked.status == 0, "\(checked.output)")
        let collector = try ChildProcess(GatewayHarness.binary, ["collect", "--config", central])
        defer { collector.stop(signal: SIGTERM) }
        try await waitUntil("the collector connected (\(collector.text))", timeout: .seconds(20)) {
            guard collector.isRunning else { throw GatewayHarness.GatewayExited(log: collector.text) }
            return collector.text.contains("connected to MQTT broker")
        }
        try await harness.start()
        for n in 0..<20 { door.record(code: 1, point: 1, direction: 1, value: 900, subject: "P-\(n)") }

        // Every journalled event is a row, once, and the receipt has reached the gateway: nothing unconfirmed.
        _ = try await eventually("20 events stored and confirmed (collector: \(collector.text))", timeout: .seconds(60)) {
            () async throws -> [String: Any]? in
            let receipts = try await harness.statusJSON()["receipts"] as? [String: Any] ?? [:]
            let rows = Int((try? postgres.psql("access", "SELECT count(*) FROM events WHERE device = 'door-3e' AND type = 'access.granted'")) ?? "") ?? 0
            return rows == 20 && receipts["unconfirmed"] as? Int == 0 && (receipts["applied"] as? Int ?? 0) >= 1 ? receipts : nil
        }
        let journalIDs = Set(try await EventIdentityEndToEndTests.ids(inJournal: harness.journalPath, type: "access.granted"))
        let rowIDs = Set(try postgres.psql("access", "SELECT id FROM events WHERE type = 'access.granted'").split(separator: "\n").map(String.init))
        #expect(journalIDs.count == 20 && rowIDs == journalIDs, "journal \(journalIDs.count), rows \(rowIDs.count)")
        let places = try postgres.psql("access", "SELECT count(DISTINCT gwseq), count(*) FROM events WHERE gateway = 'gw-test'")
        let counts = places.split(separator: "|").compactMap { Int($0) }
        #expect(counts.count == 2 && counts[0] == counts[1], "each place once: \(places)")
        #expect(await harness.stop() == 0)
    }
}
