// The ring benchmark (SPEC section 8): the Swift EventRing against the C reference ring, in one process.
//
//   ring-benchmark [RECORDS] [REPETITIONS] [CAPACITY]    ring throughput, default 50,000,000 records × 5
//   ring-benchmark journal [EVENTS] [DIRECTORY]          journal appends/s with synchronous=FULL, default 2000 events
//   ring-benchmark journal-cpu [EVENTS] [DIRECTORY]      journal CPU and mallocs per event (append, markPublished), on /dev/shm
//   ring-benchmark encode [EVENTS] [DEVICES-DIRECTORY]   the writer's per-event work outside SQLite (decode, CloudEvent JSON)
//
// Each run has one producer thread and one consumer thread, pinned to CPUs 1 and 0. Both rings carry a 64-byte record and do the same work
// per record: the producer writes a sequence number and seven payload words (seq + k) and retries while the ring is
// full; the consumer retries while it is empty, checks the sequence number and the last payload word. The C loops are
// compiled C (Benchmarks/CReferenceRing), the Swift loops are compiled Swift over the public EventRing API.
// Allocations are counted by malloc-family wrappers in the C target (malloc_counter.c) that see every thread.
import AccessModel
import CReferenceRing
import EventRing
#if canImport(Glibc)
import Glibc
#endif

/// The Swift twin of `ref_record`.
struct BenchRecord: BitwiseCopyable {
    var seq: UInt64
    var payload: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
}

/// A started POSIX thread running `body`.
final class BenchThread: @unchecked Sendable {
    // @unchecked: `thread` is written in init and read in join, both on the thread that created this object.
    private var thread = pthread_t()

    init(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        guard pthread_create(&thread, nil, { raw in
            Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, box) == 0 else { fatalError("pthread_create failed") }
    }

    func join() { pthread_join(thread, nil) }

    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
}

/// The result of one run: elapsed seconds, records out of order or damaged, malloc calls during the run.
struct RunResult {
    var seconds: Double
    var broken: UInt64
    var allocations: UInt64
}

/// Counts broken records from the consumer thread back to the main thread.
final class Tally: @unchecked Sendable {
    // @unchecked: written once by the consumer thread before it ends, read after `join()`.
    var broken: UInt64 = 0
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Runs one producer and one consumer thread and times them from before the first start to after the last join.
func timed(_ producer: @escaping @Sendable () -> Void, _ consumer: @escaping @Sendable (Tally) -> Void) -> RunResult {
    let tally = Tally()
    let allocationsBefore = ref_allocation_count()
    let start = monotonicSeconds()
    // Consumer on CPU 0, producer on CPU 1, for both rings alike: runs compare rings, not scheduler placement.
    let threads = [BenchThread { _ = ref_pin_current_thread(0); consumer(tally) }, BenchThread { _ = ref_pin_current_thread(1); producer() }]
    threads.forEach { $0.join() }
    let seconds = monotonicSeconds() - start
    return RunResult(seconds: seconds, broken: tally.broken, allocations: ref_allocation_count() - allocationsBefore)
}

/// The producer loop of both 64-byte Swift runs: sequenced records pushed as fast as the ring takes them.
@inline(__always)
func produce64(into ring: EventRing<BenchRecord>, records: UInt64) {
        var seq: UInt64 = 0
        while seq < records {
            let record = BenchRecord(seq: seq, payload: (seq, seq &+ 1, seq &+ 2, seq &+ 3, seq &+ 4, seq &+ 5, seq &+ 6))
            if ring.tryPush(record) { seq &+= 1 }
        }
}

func runSwiftRing(records: UInt64, capacity: Int) -> RunResult {
    let ring = EventRing<BenchRecord>(minimumCapacity: capacity)
    return timed({ produce64(into: ring, records: records) }, { tally in
        var expected: UInt64 = 0
        var broken: UInt64 = 0
        while expected < records {
            guard let record = ring.tryPop() else { continue }
            if record.seq != expected || record.payload.6 != expected &+ 6 { broken &+= 1 }
            expected &+= 1
        }
        tally.broken = broken
    })
}

/// The Swift ring with the consumer taking batches through `drain`, for information.
func runSwiftRingDrain(records: UInt64, capacity: Int) -> RunResult {
    let ring = EventRing<BenchRecord>(minimumCapacity: capacity)
    return timed({ produce64(into: ring, records: records) }, { tally in
        var expected: UInt64 = 0
        var broken: UInt64 = 0
        while expected < records {
            ring.drain(max: 256) { record in
                if record.seq != expected || record.payload.6 != expected &+ 6 { broken &+= 1 }
                expected &+= 1
            }
        }
        tally.broken = broken
    })
}

/// The real ring entry (88 bytes), for information; the per-record work differs slightly from the 64-byte loops.
func runEventRecordRing(records: UInt64, capacity: Int) -> RunResult {
    let ring = EventRing<EventRecord>(minimumCapacity: capacity)
    return timed({
        var seq: UInt64 = 0
        var record = EventRecord(origin: .device, device: 1, boot: 7, observedAtMillis: 0)
        while seq < records {
            record.seq = UInt32(truncatingIfNeeded: seq)
            record.observedAtMillis = Int64(bitPattern: seq)
            record.words[0] = UInt16(truncatingIfNeeded: seq)
            if ring.tryPush(record) { seq &+= 1 }
        }
    }, { tally in
        var expected: UInt64 = 0
        var broken: UInt64 = 0
        while expected < records {
            guard let record = ring.tryPop() else { continue }
            if record.observedAtMillis != Int64(bitPattern: expected)
                || record.words[0] != UInt16(truncatingIfNeeded: expected) { broken &+= 1 }
            expected &+= 1
        }
        tally.broken = broken
    })
}

func runCRing(records: UInt64, capacity: Int) -> RunResult {
    guard let ring = ref_ring_create(UInt64(capacity)) else { fatalError("ref_ring_create failed") }
    defer { ref_ring_destroy(ring) }
    let shared = UnsafeSendable(ring)
    return timed({ ref_ring_produce(shared.value, records) }, { tally in tally.broken = ref_ring_consume(shared.value, records) })
}

/// Carries the C ring's pointer to its two threads.
struct UnsafeSendable<T>: @unchecked Sendable {
    // @unchecked: the C ring is SPSC; one thread produces and one consumes, as ref_ring_* requires.
    var value: T
    init(_ value: T) { self.value = value }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

func format(_ rate: Double) -> String {
    let millions = (rate / 1e4).rounded() / 100
    return "\(millions) M records/s"
}

func ringBenchmark(records: UInt64, repetitions: Int, capacity: Int) {
    print("ring benchmark: \(records) records × \(repetitions) repetitions, capacity \(capacity), 1 producer + 1 consumer thread")
    var swiftRates: [Double] = [], cRates: [Double] = [], drainRates: [Double] = [], eventRecordRates: [Double] = []
    var swiftAllocations: UInt64 = 0, cAllocations: UInt64 = 0
    var broken: UInt64 = 0
    for repetition in 1...repetitions {
        // Alternate the order so neither ring always runs on a warmer (or more contended) machine.
        let runs: [(String, () -> RunResult)] = [
            ("swift", { runSwiftRing(records: records, capacity: capacity) }),
            ("c", { runCRing(records: records, capacity: capacity) }),
        ]
        for (name, run) in repetition % 2 == 1 ? runs : runs.reversed() {
            let result = run()
            broken += result.broken
            let rate = Double(records) / result.seconds
            print("  #\(repetition) \(name == "swift" ? "Swift EventRing" : "C reference   "): \(format(rate))  "
                + "(\(result.allocations) mallocs in the run)")
            if name == "swift" { swiftRates.append(rate); swiftAllocations += result.allocations } else {
                cRates.append(rate); cAllocations += result.allocations
            }
        }
        let drain = runSwiftRingDrain(records: records, capacity: capacity)
        broken += drain.broken
        drainRates.append(Double(records) / drain.seconds)
        let real = runEventRecordRing(records: records, capacity: capacity)
        broken += real.broken
        eventRecordRates.append(Double(records) / real.seconds)
    }
    let swift = median(swiftRates), c = median(cRates)
    print("median Swift EventRing<64-byte record>: \(format(swift))   best \(format(swiftRates.max()!))")
    print("median C reference ring (64-byte):      \(format(c))   best \(format(cRates.max()!))")
    print("ratio Swift/C (median): \((swift / c * 1000).rounded() / 1000)   (best/best: "
        + "\((swiftRates.max()! / cRates.max()! * 1000).rounded() / 1000))")
    let perEvent = Double(swiftAllocations) / (Double(records) * Double(repetitions))
    print("Swift ring allocations per event: \(perEvent)  (\(swiftAllocations) mallocs in \(repetitions) runs, "
        + "all from starting the two threads; C runs: \(cAllocations))")
    print("for information — Swift EventRing<64-byte> with drain(max: 256) consumer: \(format(median(drainRates)))")
    print("for information — Swift EventRing<EventRecord> (\(MemoryLayout<EventRecord>.size) bytes, stride \(MemoryLayout<EventRecord>.stride)): "
        + "\(format(median(eventRecordRates)))")
    if broken != 0 {
        print("ERROR: \(broken) records out of order or damaged")
        exit(1)
    }
}

let arguments = CommandLine.arguments.dropFirst()
if arguments.first == "journal" {
    let rest = Array(arguments.dropFirst())
    journalBenchmark(events: rest.first.flatMap { Int($0) } ?? 2000, directory: rest.dropFirst().first)
} else if arguments.first == "journal-cpu" {
    let rest = Array(arguments.dropFirst())
    journalCPUBenchmark(events: rest.first.flatMap { Int($0) } ?? 100_000, directory: rest.dropFirst().first)
} else if arguments.first == "encode" {
    let rest = Array(arguments.dropFirst())
    encodeBenchmark(events: rest.first.flatMap { Int($0) } ?? 1_000_000, directory: rest.dropFirst().first)
} else {
    let numbers = arguments.map { Int(String($0.filter { $0 != "_" })) }
    guard numbers.allSatisfy({ $0 != nil && $0! > 0 }) else {
        print("usage: ring-benchmark [RECORDS] [REPETITIONS] [CAPACITY] | ring-benchmark journal [EVENTS] [DIRECTORY]"
            + " | ring-benchmark journal-cpu [EVENTS] [DIRECTORY] | ring-benchmark encode [EVENTS] [DEVICES-DIRECTORY]")
        exit(64)
    }
    ringBenchmark(records: UInt64(numbers.first.flatMap { $0 } ?? 50_000_000),
                  repetitions: numbers.dropFirst().first.flatMap { $0 } ?? 5,
                  capacity: numbers.dropFirst(2).first.flatMap { $0 } ?? 4096)
}
