import EventRing
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A 64-byte record like the benchmark's: a sequence number and payload words.
struct Sequenced: BitwiseCopyable {
    var seq: UInt64
    var payload: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

    init(_ seq: UInt64) {
        self.seq = seq
        payload = (seq, seq &* 3, 0, 0, 0, 0, ~seq)
    }

    var isIntact: Bool { payload.0 == seq && payload.1 == seq &* 3 && payload.6 == ~seq }
}

/// Runs `body` on a new POSIX thread; `join` waits for it.
final class TestThread: @unchecked Sendable {
    // @unchecked: `thread` is written once in init and read in join on the creating thread.
    private var thread = pthread_t()

    init(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let created = pthread_create(&thread, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        precondition(created == 0)
    }

    func join() { pthread_join(thread, nil) }

    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
}

@Suite struct EventRingTests {
    @Test func capacityIsRoundedUpToAPowerOfTwo() {
        #expect(EventRing<Int>(minimumCapacity: 5).capacity == 8)
        #expect(EventRing<Int>(minimumCapacity: 8).capacity == 8)
        #expect(EventRing<Int>(minimumCapacity: 1).capacity == 1)
    }

    @Test func emptyRingPopsNothing() {
        let ring = EventRing<Int>(minimumCapacity: 4)
        #expect(ring.tryPop() == nil)
        #expect(ring.isEmpty)
        #expect(ring.count == 0)
        #expect(ring.drain(max: 10) { _ in } == 0)
    }

    @Test func fullRingRefusesPushUntilAnElementIsPopped() {
        let ring = EventRing<Int>(minimumCapacity: 4)
        for i in 0..<4 { #expect(ring.tryPush(i)) }
        #expect(!ring.tryPush(99))
        #expect(ring.count == 4)
        #expect(ring.tryPop() == 0)
        #expect(ring.tryPush(4))
        #expect(!ring.tryPush(5))
        #expect(ring.count == 4)
    }

    @Test func keepsFIFOOrderAcrossManyWrapArounds() {
        let ring = EventRing<Sequenced>(minimumCapacity: 8)
        var next: UInt64 = 0
        var expected: UInt64 = 0
        var broken = 0
        // Uneven push and pop batches move the indices through every slot offset many times.
        for round in 0..<1000 {
            for _ in 0..<(1 + round % 7) where ring.tryPush(Sequenced(next)) { next += 1 }
            for _ in 0..<(1 + round % 5) {
                guard let element = ring.tryPop() else { break }
                if element.seq != expected || !element.isIntact { broken += 1 }
                expected += 1
            }
        }
        ring.drain(max: .max) { element in
            if element.seq != expected || !element.isIntact { broken += 1 }
            expected += 1
        }
        #expect(broken == 0)
        #expect(expected == next)
        #expect(next > 1000)
    }

    @Test func drainHandsAtMostMaxInOrder() {
        let ring = EventRing<Int>(minimumCapacity: 16)
        for i in 0..<10 { _ = ring.tryPush(i) }
        var seen: [Int] = []
        #expect(ring.drain(max: 4) { seen.append($0) } == 4)
        #expect(seen == [0, 1, 2, 3])
        #expect(ring.drain(max: 100) { seen.append($0) } == 6)
        #expect(seen == Array(0..<10))
        #expect(ring.isEmpty)
    }

    @Test func drainThatThrowsFreesOnlyTheElementsHandedOut() {
        struct Stop: Error {}
        let ring = EventRing<Int>(minimumCapacity: 8)
        for i in 0..<5 { _ = ring.tryPush(i) }
        #expect(throws: Stop.self) { try ring.drain(max: 5) { if $0 == 2 { throw Stop() } } }
        #expect(ring.tryPop() == 3)
    }

    @Test func producerAndConsumerThreadsPassMillionsOfElementsInOrderWithoutLoss() {
        let total: UInt64 = 4_000_000
        let ring = EventRing<Sequenced>(minimumCapacity: 1024)
        let producer = TestThread {
            var seq: UInt64 = 0
            while seq < total {
                if ring.tryPush(Sequenced(seq)) { seq += 1 }
            }
        }
        var expected: UInt64 = 0
        var broken = 0
        while expected < total {
            if expected % 2 == 0, let element = ring.tryPop() {
                if element.seq != expected || !element.isIntact { broken += 1 }
                expected += 1
            } else {
                ring.drain(max: 97) { element in
                    if element.seq != expected || !element.isIntact { broken += 1 }
                    expected += 1
                }
            }
        }
        producer.join()
        #expect(broken == 0)
        #expect(expected == total)
        #expect(ring.isEmpty)
    }

    @Test func blockingPushWaitsForTheConsumerInsteadOfDropping() {
        let total = 200_000
        let ring = EventRing<Int>(minimumCapacity: 16)
        let producer = TestThread {
            for i in 0..<total {
                while !ring.push(i, timeout: .seconds(1)) {}
            }
        }
        var expected = 0
        var outOfOrder = 0
        let doorbell = RingDoorbell()
        while expected < total {
            // A slow consumer: the producer fills the ring and must wait, over and over.
            let n = ring.drain(max: 5) { value in
                if value != expected { outOfOrder += 1 }
                expected += 1
            }
            if n == 0 { doorbell.wait(timeout: .microseconds(50)) { !ring.isEmpty } }
        }
        producer.join()
        #expect(outOfOrder == 0)
        #expect(expected == total)
    }

    @Test func pushTimesOutOnAFullRingThatNobodyDrains() {
        let ring = EventRing<Int>(minimumCapacity: 2)
        #expect(ring.tryPush(1) && ring.tryPush(2))
        let start = ContinuousClock.now
        #expect(!ring.push(3, timeout: .milliseconds(20)))
        #expect(ContinuousClock.now - start >= .milliseconds(20))
        #expect(ring.tryPop() == 1)
    }
}
