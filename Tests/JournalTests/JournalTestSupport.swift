import AccessModel
import Foundation
import Journal
import TestSupport

/// A journal in a fresh temporary directory, removed when the test is done with it.
struct TemporaryJournal {
    let directory: URL
    var path: String { directory.appendingPathComponent("state/journal.db").path }

    init() throws { directory = try makeTemporaryDirectory("journal-test") }

    func open() throws -> Journal { try Journal(path: path) }
    func reader() throws -> JournalReader { try JournalReader(path: path) }
    func remove() { try? FileManager.default.removeItem(at: directory) }
}

let baseMillis: Int64 = 1_795_766_400_000  // 2026-11-27T00:00:00Z

func source(_ device: String) -> EventSource {
    EventSource(site: "kunming-guandu", gateway: "gw-01", device: device, kind: "face-door",
                location: [("building", "3")])
}

/// A device record `seq` of `device` in boot `boot`, of type `type`, recorded `offset` ms after `baseMillis`.
func deviceEntry(_ device: String, boot: UInt16 = 7, seq: UInt32, type: String = "access.granted",
                 recordedOffset: Int64 = 0, person: String = "P-0012", serial: String = "", timeMillis: Int64? = nil) -> JournalEntry {
    var event = NormalisedEvent(
        device: device, origin: .device(boot: boot, seq: seq), type: type, alarm: false,
        time: Timestamp(millisecondsSinceEpoch: timeMillis ?? baseMillis + recordedOffset - 50),
        recordedTime: Timestamp(millisecondsSinceEpoch: baseMillis + recordedOffset),
        fields: [("method", .string("face")), ("person", .string(person))],
        raw: .init(code: 1, point: 1, direction: 1, value: 934, extra: 0, flags: 0))
    event.serial = DeviceSerial(sanitising: serial)
    return JournalEntry(event: event, source: source(device),
                        topic: CloudEvent.topic(of: event, source: source(device), prefix: "accessgw"))
}

/// A gateway-made event (no boot/seq identity) for `device`.
func gatewayEntry(_ device: String, type: String = "device.online", recordedOffset: Int64 = 0) -> JournalEntry {
    let time = Timestamp(millisecondsSinceEpoch: baseMillis + recordedOffset)
    let event = NormalisedEvent(device: device, origin: .gateway, type: type, alarm: false, time: time, recordedTime: time)
    return JournalEntry(event: event, source: source(device),
                        topic: CloudEvent.topic(of: event, source: source(device), prefix: "accessgw"))
}
