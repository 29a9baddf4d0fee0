import AccessModel
import Foundation
@testable import Gateway
import Journal
import Simulators
import Testing
import TestSupport

/// Residents' rights (issue 11): `accessgw forget` deletes every form one resident's identifier takes in the journal,
/// and nothing else; the daemon says so with an event that does not repeat the identifier.
@Suite("residents' rights: forget", .serialized)
struct ForgetTests {
    static func privacy() -> GatewayConfiguration.Privacy {
        var privacy = GatewayConfiguration.Privacy()
        privacy.personIDs = .pseudonymise
        privacy.plates = .mask
        privacy.key = Array("site-secret".utf8)
        return privacy
    }

    static func entry(_ device: String, seq: UInt32, type: String = "access.granted", _ field: String, _ value: String) -> JournalEntry {
        let time = Timestamp(millisecondsSinceEpoch: 1_795_766_400_000 + Int64(seq))
        let event = NormalisedEvent(device: device, origin: .device(boot: 1, seq: seq), type: type, alarm: false, time: time,
                                    recordedTime: time, fields: [(field, .string(value))],
                                    raw: .init(code: 1, point: 1, direction: 1, value: 0, extra: 0, flags: 0))
        let source = EventSource(site: "s1", gateway: "gw-01", device: device, kind: "face-door")
        return JournalEntry(event: event, source: source, topic: CloudEvent.topic(of: event, source: source, prefix: "accessgw"))
    }

    @Test func forgetRemovesEveryMatchingRowAndNothingElse() throws {
        let directory = try makeTemporaryDirectory("accessgw-forget")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("journal.db").path
        let filter = PrivacyFilter(Self.privacy())
        let journal = try Journal(path: path)
        let forgotten = [  // P-0012 as it was journalled before, with and after pseudonymisation, and as an unknown event
            Self.entry("door-1", seq: 1, "person", "P-0012"),
            Self.entry("door-1", seq: 2, "person", filter.pseudonym("P-0012")),
            Self.entry("door-1", seq: 3, "person", filter.bareHMAC("P-0012")),
            Self.entry("door-1", seq: 4, type: "device.unknown_event", "subject", "P-0012"),
        ]
        let kept = [
            Self.entry("door-1", seq: 5, "person", "P-0099"),
            Self.entry("door-1", seq: 6, "person", filter.pseudonym("P-0099")),
            Self.entry("door-1", seq: 7, "card", "P-0012-X"),
            Self.entry("door-1", seq: 8, "card", "0012"),
            Self.entry("gate-1", seq: 9, "plate", "云B77777"),
            Self.entry("gate-1", seq: 10, "plate", "云B***77"),
        ]
        let plates = [Self.entry("gate-1", seq: 11, "plate", "云AD12345"), Self.entry("gate-1", seq: 12, "plate", "云A***45"),
                      Self.entry("gate-1", seq: 13, "plate", filter.pseudonym("云AD12345"))]
        _ = try journal.append(forgotten + kept + plates)
        #expect(filter.pseudonym("P-0012").hasPrefix("k1:"))

        #expect(try Journal.erase(path: path, request: filter.erasure(person: "P-0012")) == 4)
        #expect(try Journal.erase(path: path, request: filter.erasure(plate: "云AD12345")) == 3)
        #expect(try Journal.erase(path: path, request: filter.erasure(card: "nobody")) == 0)

        let remaining = try JournalReader(path: path).events(filter: JournalFilter(limit: nil, devices: [], types: []))
        #expect(remaining.compactMap { $0.device == "door-1" || $0.device == "gate-1" ? $0.seq : nil }.sorted()
            == [5, 6, 7, 8, 9, 10])
        let erasures = try journal.pendingErasures()
        #expect(erasures.map(\.kind) == ["person", "plate", "card"])
        #expect(erasures.map(\.count) == [4, 3, 0])
    }

    /// The journal and its WAL and SHM are 0640: residents' data is for the service user and its group only.
    @Test func journalFilesAreCreatedOwnerReadWriteGroupRead() throws {
        let directory = try makeTemporaryDirectory("accessgw-modes")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("journal.db").path
        let journal = try Journal(path: path)
        _ = try journal.append([Self.entry("door-1", seq: 1, "person", "P-1")])
        for file in [path, path + "-wal", path + "-shm"] {
            var info = stat()
            #expect(stat(file, &info) == 0, "\(file) exists")
            #expect(info.st_mode & 0o777 == 0o640, "\(file) is \(String(info.st_mode & 0o777, radix: 8))")
        }
        withExtendedLifetime(journal) {}
    }

    /// While the daemon runs: `forget` deletes the person's events (pseudonymised by the daemon) at once, and the
    /// daemon publishes gateway.data_erased with the count and without the identifier.
    @Test func forgetWhileTheDaemonRunsLeavesAnAuditEventWithoutTheIdentifier() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let key = harness.directory.appendingPathComponent("privacy.key").path
        try "site-secret\n".write(toFile: key, atomically: true, encoding: .utf8)
        try harness.configure(buses: simulator.busYAML, devices: "  - { id: door-1, profile: face-door, bus: lan, unit: 1, poll: 50ms }",
                              gatewayExtra: "  privacy: { person_ids: pseudonymise, key_file: \(key) }")
        let subscriber = try await Subscriber.subscribed(to: "accessgw/#", on: harness.broker)
        try await harness.start()
        let door = simulator.devices[0]
        door.record(code: 1, point: 1, direction: 1, value: 934, subject: "P-0012")
        door.record(code: 1, point: 1, direction: 1, value: 934, subject: "P-0099")
        door.record(code: 1, point: 1, direction: 1, value: 934, subject: "P-0012")
        let granted = try await subscriber.waitForEvents("three grants") { $0.filter { $0.type == "access.granted" }.count == 3 }
        let pseudonym = PrivacyFilter(Self.privacy()).pseudonym("P-0012")
        #expect(granted.filter { $0.data["person"] as? String == pseudonym }.count == 2)

        let (status, output) = try await ChildProcess.run(GatewayHarness.binary, ["forget", "--person", "P-0012", "--config", harness.configPath])
        #expect(status == 0, "\(output)")
        #expect(output.contains("deleted 2 event(s) of this person"), "\(output)")
        let erased = try await subscriber.waitForEvents("gateway.data_erased") { $0.contains { $0.type == "gateway.data_erased" } }
            .first { $0.type == "gateway.data_erased" }!
        #expect(erased.data["identifier"] as? String == "person")
        #expect(erased.data["events_deleted"] as? Int == 2)
        let payload = subscriber.messages.first { $0.topic.hasSuffix("/event/gateway.data_erased") }?.payload ?? ""
        #expect(!payload.contains("P-0012") && !payload.contains(pseudonym))
        let persons = try JournalReader(path: harness.journalPath).events(filter: JournalFilter(limit: nil, devices: ["door-1"], types: [NamePattern("access.*")!]))
            .map { CloudEventText.field("person", in: $0.payload) }
        #expect(persons.count == 1 && !persons.contains(pseudonym))
        await #expect(harness.stop() == 0)
    }
}

/// A data field of a stored CloudEvent payload.
enum CloudEventText {
    static func field(_ name: String, in payload: String) -> String? {
        let object = (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any]
        return (object?["data"] as? [String: Any])?[name] as? String
    }
}
