import AccessModel
import CReferenceRing
import DeviceProfiles
import Foundation

/// What the journal writer does per event outside SQLite, timed in a loop on one thread: decode a record through its
/// profile, write its CloudEvent payload (straight, and through the `JSONValue` tree for comparison). Prints ns and
/// malloc calls per event. Profiles are read from `directory` (default: `Devices/` of the working directory).
func encodeBenchmark(events: Int, directory: String?) {
    let devices = directory ?? FileManager.default.currentDirectoryPath + "/Devices"
    let source = EventSource(site: "kunming-guandu", gateway: "gw-01", device: "door-3e", kind: "face-door",
                             location: [("building", "3"), ("entrance", "east")])
    var event = NormalisedEvent(
        device: "door-3e", origin: .device(boot: 7, seq: 1042), type: "access.granted", alarm: false,
        time: Timestamp(millisecondsSinceEpoch: 1_795_766_462_345), recordedTime: Timestamp(millisecondsSinceEpoch: 1_795_766_462_401),
        fields: [("method", .string("face")), ("person", .string("P-0012")), ("score", .double(0.934)), ("door", .int(1)),
                 ("direction", .string("in"))],
        raw: .init(code: 1, point: 1, direction: 1, value: 934, extra: 0, flags: 0))
    event.serial = DeviceSerial(sanitising: "FD2411A00193")
    print("encode benchmark: \(events) events per figure, one thread; ns and malloc calls per event")
    measure("CloudEvent.json (direct)", events) { i in
        event.origin = .device(boot: 7, seq: UInt32(i))
        return CloudEvent.json(event, source: source, journalSeq: 0, epoch: "5eed").utf8.count
    }
    measure("CloudEvent.envelope().serialized (tree)", events) { i in
        event.origin = .device(boot: 7, seq: UInt32(i))
        return CloudEvent.envelope(event, source: source, journalSeq: 0, epoch: "5eed").serialized.utf8.count
    }
    for (name, subject) in [("face-door", Array("P-0012".utf8)), ("plate-reader", [0xD4, 0xC6] + Array("A12345".utf8))] {
        guard let profile = try? DeviceProfile.load(path: "\(devices)/\(name).yaml"), let decoder = RecordDecoder(profile: profile) else {
            print("  \(name): no profile in \(devices)")
            continue
        }
        var words = [UInt16](repeating: 0, count: 32)
        words[3] = 1000; words[5] = 1; words[6] = 1; words[7] = 1; words[9] = 934
        let padded = subject + [UInt8](repeating: 0, count: 40 - subject.count)
        for i in 0..<20 { words[12 + i] = UInt16(padded[2 * i]) << 8 | UInt16(padded[2 * i + 1]) }
        measure("RecordDecoder.event, \(name) record", events) { i in
            words[1] = UInt16(truncatingIfNeeded: i)
            return words.withUnsafeBufferPointer {
                decoder.event(of: $0, device: "door-3e", boot: 7, observedAt: Timestamp(millisecondsSinceEpoch: 1_795_766_462_401))
            }.event.fields.count
        }
    }
}

/// Runs `body` `events` times after a warm-up and prints the time and mallocs per call.
private func measure(_ name: String, _ events: Int, _ body: (Int) -> Int) {
    var sink = 0
    for i in 0..<min(events, 10_000) { sink &+= body(i) }
    let allocations = ref_allocation_count()
    let start = monotonicSeconds()
    for i in 0..<events { sink &+= body(i) }
    let seconds = monotonicSeconds() - start
    let mallocs = Double(ref_allocation_count() - allocations) / Double(events)
    print("  \(name):\t\(String(format: "%.0f", seconds * 1e9 / Double(events))) ns\t\(String(format: "%.1f", mallocs)) mallocs"
        + (sink == 42 ? " " : ""))
}
