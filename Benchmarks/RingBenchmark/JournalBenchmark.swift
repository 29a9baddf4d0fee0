import AccessModel
import CReferenceRing
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

/// The journal's CPU per event, apart from the disk: `events` face-door events of 30 devices appended in batches of
/// 35 (the drain's commit size), PUBACKs marked in journal order every 256 events, as the gateway does; thread CPU
/// time (`CLOCK_THREAD_CPUTIME_ID`) and malloc calls per event for each. On tmpfs (`/dev/shm`, the default) fsync
/// costs nothing, so the figures are SQLite's and the journal's own work.
func journalCPUBenchmark(events: Int, directory: String?) {
    let base = directory ?? "/dev/shm"
    let path = "\(base)/accessgw-journal-cpu-\(getpid())/journal.db"
    defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
    let sources = (0..<30).map { index in
        EventSource(site: "kunming-guandu", gateway: "gw-01", device: "door-\(index)", kind: "face-door",
                    location: [("building", "3"), ("entrance", "east")])
    }
    var seqs = [UInt32](repeating: 0, count: sources.count)
    let entries = (0..<events).map { index -> JournalEntry in
        let device = index % sources.count
        seqs[device] += 1
        let now = Timestamp.now
        var event = NormalisedEvent(
            device: sources[device].device, origin: .device(boot: 7, seq: seqs[device]), type: "access.granted",
            alarm: false, time: now, recordedTime: now,
            fields: [("method", .string("face")), ("person", .string("P-0012")), ("score", .double(0.934)),
                     ("door", .int(1)), ("direction", .string("in"))],
            raw: .init(code: 1, point: 1, direction: 1, value: 934, extra: 0, flags: 0))
        // Half the devices name their controller (face doors), half have no serial (card readers).
        if device % 2 == 0 { event.serial = DeviceSerial(sanitising: Array("FD-\(device)".utf8)) }
        return JournalEntry(event: event, source: sources[device],
                            topic: CloudEvent.topic(of: event, source: sources[device], prefix: "accessgw"))
    }
    func threadCPU() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
    do {
        let journal = try Journal(path: path)
        var appendCPU = 0.0, markCPU = 0.0
        var appendMallocs: UInt64 = 0, markMallocs: UInt64 = 0
        var acknowledged: [Int64] = []
        var start = 0
        while start < entries.count {
            let batch = Array(entries[start..<min(entries.count, start + 35)])
            start += batch.count
            let (cpu, mallocs) = (threadCPU(), ref_allocation_count())
            let outcome = try journal.append(batch)
            appendCPU += threadCPU() - cpu
            appendMallocs += ref_allocation_count() - mallocs
            acknowledged += outcome.stored.map(\.journalSeq)
            if acknowledged.count >= 256 || start == entries.count {
                let (cpu, mallocs) = (threadCPU(), ref_allocation_count())
                try journal.markPublished(acknowledged)
                markCPU += threadCPU() - cpu
                markMallocs += ref_allocation_count() - mallocs
                acknowledged.removeAll(keepingCapacity: true)
            }
        }
        let count = Double(entries.count)
        print("journal CPU: \(entries.count) events in batches of 35, marks every 256, in \(base)")
        print("  append:\t\(String(format: "%.2f", appendCPU * 1e6 / count)) us/event\t\(String(format: "%.1f", Double(appendMallocs) / count)) mallocs/event")
        print("  markPublished:\t\(String(format: "%.2f", markCPU * 1e6 / count)) us/event\t\(String(format: "%.1f", Double(markMallocs) / count)) mallocs/event")
        print("  pending at the end: \(try journal.pendingCount())")
        // The publisher's read-back after the hand-off overflowed: the same events appended again, read in pages
        // of 500 as whole `StoredEvent`s and as what is sent (seq, topic, payload).
        var batchStart = 0
        while batchStart < entries.count {
            let batch = Array(entries[batchStart..<min(entries.count, batchStart + 35)])
            batchStart += batch.count
            _ = try journal.append(batch.map { entry in
                var again = entry
                if case let .device(boot, seq) = entry.event.origin { again.event.origin = .device(boot: boot + 1, seq: seq) }
                return again
            })
        }
        let after = try journal.latestJournalSeq() - Int64(entries.count)
        let stored = { (cursor: Int64) in try journal.unpublished(afterJournalSeq: cursor, limit: 500).last?.journalSeq }
        let sent = { (cursor: Int64) in try journal.unpublishedPayloads(afterJournalSeq: cursor, limit: 500).last?.journalSeq }
        // Each read twice, alternately, so neither gains from the other's warm cache alone.
        for (name, read) in [("unpublished", stored), ("unpublishedPayloads", sent), ("unpublished", stored),
                             ("unpublishedPayloads", sent)] {
            var cursor = after
            let (cpu, mallocs) = (threadCPU(), ref_allocation_count())
            while let last = try read(cursor) { cursor = last }
            print("  read back, \(name):\t\(String(format: "%.2f", (threadCPU() - cpu) * 1e6 / count)) us/event\t"
                  + "\(String(format: "%.1f", Double(ref_allocation_count() - mallocs) / count)) mallocs/event")
        }
    } catch {
        print("journal CPU benchmark failed: \(error)")
        exit(1)
    }
}
