import AccessModel
import Foundation
import Journal

/// Appends `events` face-door events to a fresh journal (synchronous=FULL, WAL) in batches of 1, 10 and 100 and prints
/// events/s and commits/s: each batch is one transaction, committed (fsync) before `append` returns.
func journalBenchmark(events: Int, directory: String?) {
    let base = directory ?? FileManager.default.temporaryDirectory.path
    let source = EventSource(site: "kunming-guandu", gateway: "gw-01", device: "door-3e", kind: "face-door",
                             location: [("building", "3"), ("entrance", "east")])
    print("journal benchmark: \(events) events per batch size, synchronous=FULL, WAL, in \(base)")
    for batchSize in [1, 10, 100] {
        let path = "\(base)/accessgw-journal-bench-\(getpid())-\(batchSize)/journal.db"
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        do {
            let journal = try Journal(path: path)
            var seq: UInt32 = 0
            let start = monotonicSeconds()
            var stored = 0
            while stored < events {
                let batch = (0..<min(batchSize, events - stored)).map { _ -> JournalEntry in
                    seq += 1
                    let now = Timestamp.now
                    let event = NormalisedEvent(
                        device: "door-3e", origin: .device(boot: 7, seq: seq), type: "access.granted", alarm: false,
                        time: now, recordedTime: now,
                        fields: [("method", .string("face")), ("person", .string("P-0012")), ("score", .double(0.934)),
                                 ("door", .int(1)), ("direction", .string("in"))],
                        raw: .init(code: 1, point: 1, direction: 1, value: 934, extra: 0, flags: 0))
                    return JournalEntry(event: event, source: source,
                                        topic: CloudEvent.topic(of: event, source: source, prefix: "accessgw"))
                }
                stored += try journal.append(batch).stored.count
            }
            let seconds = monotonicSeconds() - start
            let commits = (events + batchSize - 1) / batchSize
            print("  batch \(batchSize):\t\(Int(Double(events) / seconds)) events/s\t\(Int(Double(commits) / seconds)) commits/s"
                + "\t(\(String(format: "%.2f", seconds * 1000 / Double(commits))) ms per commit)")
        } catch {
            print("journal benchmark failed: \(error)")
            exit(1)
        }
    }
}
