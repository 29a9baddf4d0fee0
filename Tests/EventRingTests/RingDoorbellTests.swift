import Atomics
import EventRing
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct RingDoorbellTests {
    @Test func waitReturnsAtOnceWhenWorkIsAlreadyThere() {
        let bell = RingDoorbell()
        let start = ContinuousClock.now
        #expect(bell.wait(timeout: .seconds(10)) { true })
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    @Test func timedWaitReturnsFalseWhenNothingArrives() {
        let bell = RingDoorbell()
        let start = ContinuousClock.now
        #expect(!bell.wait(timeout: .milliseconds(30)) { false })
        #expect(ContinuousClock.now - start >= .milliseconds(30))
    }

    @Test func negativeTimeoutDoesNotSleep() {
        let bell = RingDoorbell()
        let start = ContinuousClock.now
        #expect(!bell.wait(timeout: .seconds(-3)) { false })
        #expect(ContinuousClock.now - start < .seconds(2))
    }

    @Test func pushAndRingWakeAConsumerSleepingOnSeveralRings() {
        let bell = RingDoorbell()
        let rings = (0..<3).map { _ in EventRing<Int>(minimumCapacity: 8) }
        let consumerStarted = ManagedAtomic(false)
        let result = ManagedAtomic(-1)
        // The consumer sleeps with a 30 s timeout; only the bell can wake it within the 20 s it is allowed.
        let consumer = TestThread {
            consumerStarted.store(true, ordering: .releasing)
            let start = ContinuousClock.now
            let woke = bell.wait(timeout: .seconds(30)) { rings.contains { !$0.isEmpty } }
            let elapsed = ContinuousClock.now - start
            var value = -1
            for ring in rings { if let v = ring.tryPop() { value = v } }
            result.store(woke && elapsed < .seconds(20) ? value : -2, ordering: .releasing)
        }
        while !consumerStarted.load(ordering: .acquiring) {}
        // Let the consumer reach the condition variable; the wake must work whether or not it got there.
        sleepMilliseconds(50)
        #expect(rings[2].tryPush(42))
        bell.ring()
        consumer.join()
        #expect(result.load(ordering: .acquiring) == 42)
    }

    @Test func threeProducersAndOneSleepingConsumerLoseNoWakeUps() {
        let bell = RingDoorbell()
        let perProducer = 20_000
        let rings = (0..<3).map { _ in EventRing<Int>(minimumCapacity: 4) }
        let producers = rings.map { ring in
            TestThread {
                for i in 0..<perProducer {
                    while !ring.push(i, timeout: .seconds(1)) {}
                    if i % 3 == 0 { bell.ring() }
                }
                bell.ring()
            }
        }
        var received = 0
        var lostWakeUps = 0
        let start = ContinuousClock.now
        while received < perProducer * rings.count, ContinuousClock.now - start < .seconds(60) {
            var got = 0
            for ring in rings { got += ring.drain(max: 64) { _ in } }
            received += got
            if got == 0 {
                // A long timeout: a lost wake-up shows as a sleep that ran out while work was waiting.
                let before = ContinuousClock.now
                bell.wait(timeout: .seconds(2)) { rings.contains { !$0.isEmpty } }
                if ContinuousClock.now - before >= .seconds(2), rings.contains(where: { !$0.isEmpty }) {
                    lostWakeUps += 1
                }
            }
        }
        producers.forEach { $0.join() }
        #expect(received == perProducer * rings.count)
        #expect(lostWakeUps == 0)
    }
}

func sleepMilliseconds(_ ms: Int) {
    var ts = timespec(tv_sec: 0, tv_nsec: ms * 1_000_000)
    nanosleep(&ts, nil)
}
