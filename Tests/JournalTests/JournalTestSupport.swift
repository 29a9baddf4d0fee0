import AccessModel
import Foundation
@testable import Journal
import Synchronization
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

/// Another thread holds `journal`'s writer inside a write transaction, as a batch commit does, from `init` until
/// `release()`: what must not wait for the writer is called meanwhile.
final class HeldWriter: Sendable {
    private let holding = DispatchSemaphore(value: 0), releasing = DispatchSemaphore(value: 0)
    private let released = DispatchSemaphore(value: 0)

    init(_ journal: Journal) {
        Thread.detachNewThread { [holding, releasing, released] in
            try? journal.withWriteConnection { connection in
                try connection.transaction {
                    holding.signal()
                    releasing.wait()
                }
            }
            released.signal()
        }
        holding.wait()
    }

    func release() {
        releasing.signal()
        released.wait()
    }

    /// `body`'s result, run on a thread of its own; nil if it has not returned within 20 s (it waited for the writer):
    /// the test then fails instead of hanging.
    func runElsewhere<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T? {
        let outcome = Outcome<T>(), done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let value = body()
            outcome.value.withLock { $0 = value }
            done.signal()
        }
        guard done.wait(timeout: .now() + 20) == .success else { return nil }
        return outcome.value.withLock { $0 }
    }

    private final class Outcome<T: Sendable>: Sendable {
        let value = Mutex<T?>(nil)
    }
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
