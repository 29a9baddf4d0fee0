import Atomics
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the single journal writer sleeps while every ring it drains is empty, and how any producer wakes it.
///
/// The sleeper announces itself in `sleepers` before its last look at the rings; a producer calls `ring()` after
/// publishing, which costs one fence and one load of `sleepers` unless somebody sleeps. The fence is what makes the
/// handshake sound: without it, the producer's index store could still sit in its store buffer while it reads
/// `sleepers == 0`, and the consumer, re-checking at the same moment, would see an empty ring and sleep through the
/// event (the classic store-load race). Producers ring once per batch they push, not per element.
///
/// Blocking uses a pthread mutex and a condition variable on CLOCK_MONOTONIC. A raw futex would be lighter, but
/// `syscall(2)` is variadic and cannot be called from Swift, and only the sleeping path ever takes the lock.
public final class RingDoorbell: @unchecked Sendable {
    // @unchecked Sendable: `sleepers` and `epoch` are atomics; the mutex and condition variable live in memory that
    // is allocated once, never moved, and freed only in deinit, when no thread can be waiting.
    @usableFromInline let sleepers: UnsafeAtomic<Int>
    private let epoch: UnsafeAtomic<UInt64>
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private let line: UnsafeMutableRawPointer

    public init() {
        // `sleepers` gets a line of its own: producers read it after every batch and it changes only when the
        // consumer goes to sleep, so the line stays shared in every core's cache.
        line = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 64)
        line.initializeMemory(as: UInt8.self, repeating: 0, count: 128)
        sleepers = UnsafeAtomic(at: line.assumingMemoryBound(to: Int.AtomicRepresentation.self))
        epoch = UnsafeAtomic(at: (line + 64).assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        #if os(Linux)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        #endif
        precondition(pthread_cond_init(condition, &attributes) == 0, "pthread_cond_init failed")
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
        line.deallocate()
    }

    /// Wakes every thread sleeping in `wait`, if any. Call after publishing work (after pushing a batch).
    @inlinable @inline(__always)
    public func ring() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .relaxed) != 0 { wakeAll() }
    }

    /// Wakes all sleepers unconditionally.
    @usableFromInline
    func wakeAll() {
        pthread_mutex_lock(mutex)
        epoch.wrappingIncrement(ordering: .releasing)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Sleeps until `ready()` holds, the bell rings, or `timeout` passes; returns `ready()`'s last answer.
    ///
    /// `ready` is evaluated after the sleeper has announced itself, so work published before that re-check is seen
    /// and work published after it rings the bell. It may return false after a ring (spurious or for another
    /// consumer); callers loop.
    @discardableResult
    public func wait(timeout: Duration, until ready: () -> Bool) -> Bool {
        wait(timeout: timeout, announcingIn: sleepers, until: ready)
    }

    /// `wait`, announcing the sleeper in a counter the waker keeps elsewhere (a ring keeps its producer's on the
    /// consumer's cache line, where checking it costs the consumer nothing).
    func wait(timeout: Duration, announcingIn sleepers: UnsafeAtomic<Int>, until ready: () -> Bool) -> Bool {
        if ready() { return true }
        let seen = epoch.load(ordering: .acquiring)
        sleepers.wrappingIncrement(ordering: .sequentiallyConsistent)
        defer { sleepers.wrappingDecrement(ordering: .relaxed) }
        if ready() { return true }
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let (seconds, attoseconds) = max(timeout, .zero).components
        let nanos = Int(deadline.tv_nsec) + Int(attoseconds / 1_000_000_000)
        deadline.tv_sec += Int(seconds) + nanos / 1_000_000_000
        deadline.tv_nsec = nanos % 1_000_000_000
        pthread_mutex_lock(mutex)
        while epoch.load(ordering: .relaxed) == seen {
            // 0 is a wake-up (maybe spurious: the loop re-checks); anything else is ETIMEDOUT.
            if pthread_cond_timedwait(condition, mutex, &deadline) != 0 { break }
        }
        pthread_mutex_unlock(mutex)
        return ready()
    }
}
