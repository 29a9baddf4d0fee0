import Atomics
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A bounded single-producer single-consumer ring of fixed-size records: the hot path from one bus poller to the
/// journal writer.
///
/// Storage is allocated once; pushing and popping copy the bits of one `Element` and touch two indices, with no
/// allocation, reference counting or exclusivity checks per element. Indices grow without wrapping (64-bit) and are
/// reduced to a slot with a power-of-two `mask`. The producer's index and the consumer's index live on their own
/// cache lines, each next to that side's cached copy of the other side's index, so the sides share a line only when a
/// cached copy runs out.
public final class EventRing<Element: BitwiseCopyable>: @unchecked Sendable {
    // @unchecked Sendable: one thread produces (tryPush/push) and one thread consumes (tryPop/drain/waitUntilNotEmpty).
    // Each side writes only its own cache line; the slot handed over is published with a release store of the index
    // and read after an acquire load of it. `count`/`isEmpty` may be called from anywhere and are only estimates then.

    /// The number of elements the ring holds when full (a power of two).
    public let capacity: Int
    @usableFromInline let mask: Int
    @usableFromInline let slots: UnsafeMutablePointer<Element>
    /// The index block: producer line, consumer line, parking line (see `ControlLayout`).
    @usableFromInline let control: UnsafeMutableRawPointer
    /// Where a producer blocked on a full ring sleeps; the consumer wakes it after freeing slots.
    @usableFromInline let spaceBell: RingDoorbell

    /// Creates a ring holding at least `minimumCapacity` elements (rounded up to a power of two).
    public init(minimumCapacity: Int) {
        precondition(minimumCapacity > 0, "an EventRing needs room for at least one element")
        var capacity = 1
        while capacity < minimumCapacity { capacity <<= 1 }
        self.capacity = capacity
        mask = capacity - 1
        let slotAlignment = max(MemoryLayout<Element>.alignment, ControlLayout.lineSize)
        slots = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<Element>.stride * capacity,
                                                 alignment: slotAlignment)
            .bindMemory(to: Element.self, capacity: capacity)
        control = UnsafeMutableRawPointer.allocate(byteCount: ControlLayout.size, alignment: ControlLayout.lineSize)
        control.initializeMemory(as: UInt8.self, repeating: 0, count: ControlLayout.size)
        spaceBell = RingDoorbell()
    }

    deinit {
        // Elements are BitwiseCopyable: nothing to deinitialise, only the memory to free.
        UnsafeMutableRawPointer(slots).deallocate()
        control.deallocate()
    }

    // MARK: Producer side

    /// Appends `element` if there is room; returns false when the ring is full. Producer thread only.
    @inlinable @inline(__always)
    public func tryPush(_ element: Element) -> Bool {
        let head = producerHead.load(ordering: .relaxed)  // only this thread writes it
        if head &- producerCachedTail.pointee == capacity {
            producerCachedTail.pointee = consumerTail.load(ordering: .acquiring)
            if head &- producerCachedTail.pointee == capacity { return false }
        }
        (slots + (head & mask)).initialize(to: element)
        producerHead.store(head &+ 1, ordering: .releasing)
        return true
    }

    /// Appends `element`, waiting for room up to `timeout`; returns false only if the ring stayed full that long.
    ///
    /// A bus poller must not drop events: it calls this in a loop, checking for shutdown between attempts. The wait
    /// spins briefly, then sleeps on the ring's space doorbell, which the consumer rings after it frees slots. The
    /// consumer checks for a sleeper with a plain load, without the fence `RingDoorbell.ring()` pays, to keep popping
    /// cheap; a wake-up missed that way costs the producer at most one 1 ms sleep slice, and only when the ring was
    /// already full, i.e. when the journal writer is the bottleneck anyway.
    @inlinable
    public func push(_ element: Element, timeout: Duration) -> Bool {
        if tryPush(element) { return true }
        return pushSlow(element, timeout: timeout)
    }

    @usableFromInline
    func pushSlow(_ element: Element, timeout: Duration) -> Bool {
        for attempt in 0..<128 {
            if tryPush(element) { return true }
            if attempt >= 64 { sched_yield() }
        }
        let deadline = ContinuousClock.now + timeout
        while true {
            if tryPush(element) { return true }
            let left = deadline - ContinuousClock.now
            if left <= .zero { return false }
            // Sliced: `tryPop` wakes us on a hint without a fence, so a wake-up can be missed; 1 ms bounds the cost.
            _ = spaceBell.wait(timeout: Swift.min(left, .milliseconds(1)), announcingIn: parkedProducers) {
                !isFullForProducer
            }
        }
    }

    /// True when the producer sees no free slot, refreshing its view of the consumer's index.
    @usableFromInline
    var isFullForProducer: Bool {
        producerHead.load(ordering: .relaxed) &- consumerTail.load(ordering: .acquiring) == capacity
    }

    // MARK: Consumer side

    /// Removes and returns the oldest element, or nil when the ring is empty. Consumer thread only.
    @inlinable @inline(__always)
    public func tryPop() -> Element? {
        let tail = consumerTail.load(ordering: .relaxed)  // only this thread writes it
        if tail == consumerCachedHead.pointee {
            consumerCachedHead.pointee = producerHead.load(ordering: .acquiring)
            if tail == consumerCachedHead.pointee { return nil }
        }
        let element = (slots + (tail & mask)).pointee
        consumerTail.store(tail &+ 1, ordering: .releasing)
        if parkedProducers.load(ordering: .relaxed) != 0 { spaceBell.wakeAll() }
        return element
    }

    /// Hands up to `max` elements to `body` in FIFO order and frees their slots with one index store; returns how
    /// many. Consumer thread only. Wakes a producer waiting for space.
    @inlinable
    @discardableResult
    public func drain(max: Int, _ body: (Element) throws -> Void) rethrows -> Int {
        let tail = consumerTail.load(ordering: .relaxed)
        var available = consumerCachedHead.pointee &- tail
        if available < max {
            consumerCachedHead.pointee = producerHead.load(ordering: .acquiring)
            available = consumerCachedHead.pointee &- tail
        }
        let n = Swift.min(available, max)
        if n <= 0 { return 0 }
        var index = tail
        let end = tail &+ n
        // The slots stay owned by the consumer until the release store below, even if `body` throws midway.
        defer {
            consumerTail.store(index, ordering: .releasing)
            if parkedProducers.load(ordering: .relaxed) != 0 { spaceBell.wakeAll() }
        }
        while index != end {
            let element = (slots + (index & mask)).pointee
            index &+= 1
            try body(element)
        }
        return n
    }

    /// True when the consumer has nothing to take. Exact on the consumer thread.
    @inlinable
    public var isEmpty: Bool {
        producerHead.load(ordering: .acquiring) == consumerTail.load(ordering: .relaxed)
    }

    /// The number of elements in the ring; exact on either side's thread only while the other side is idle.
    @inlinable
    public var count: Int {
        let tail = consumerTail.load(ordering: .acquiring)
        let head = producerHead.load(ordering: .acquiring)
        return Swift.max(0, Swift.min(head &- tail, capacity))
    }

    // MARK: Index block

    @inlinable var producerHead: UnsafeAtomic<Int> {
        UnsafeAtomic(at: (control + ControlLayout.producerHead).assumingMemoryBound(to: Int.AtomicRepresentation.self))
    }
    @inlinable var producerCachedTail: UnsafeMutablePointer<Int> {
        (control + ControlLayout.producerCachedTail).assumingMemoryBound(to: Int.self)
    }
    @inlinable var consumerTail: UnsafeAtomic<Int> {
        UnsafeAtomic(at: (control + ControlLayout.consumerTail).assumingMemoryBound(to: Int.AtomicRepresentation.self))
    }
    @inlinable var consumerCachedHead: UnsafeMutablePointer<Int> {
        (control + ControlLayout.consumerCachedHead).assumingMemoryBound(to: Int.self)
    }
    /// Producers sleeping for space (0 or 1): written by the producer only when it parks, read by the consumer after
    /// every pop from its own, already cached line.
    @inlinable var parkedProducers: UnsafeAtomic<Int> {
        UnsafeAtomic(at: (control + ControlLayout.parkedProducers).assumingMemoryBound(to: Int.AtomicRepresentation.self))
    }
}

/// Byte offsets in the ring's index block.
///
/// The indices sit in manually allocated, line-aligned memory rather than in stored properties: that fixes their cache
/// lines (Swift has no alignment attribute for fields) and keeps the cached copies, which are plain memory, free of
/// the dynamic exclusivity checks a class `var` would cost on every access.
///
/// The atomics are swift-atomics' `UnsafeAtomic` because it is a view of memory at a given address, which is what this
/// layout needs; `Synchronization.Atomic` lowers to the same instructions (a plain `mov` for acquire loads and
/// release stores on x86-64, `ldar`/`stlr` on ARM64) but lives inline in its owner, where no alignment can be asked
/// for. Both inline fully into the caller; the benchmark's disassembly shows the same loop as the C ring's.
@usableFromInline
enum ControlLayout {
    @usableFromInline static let lineSize = 64
    /// Two lines between the sides: x86's adjacent-line prefetcher pulls 64-byte lines in pairs.
    @usableFromInline static let sideStride = 128
    @usableFromInline static let producerHead = 0
    @usableFromInline static let producerCachedTail = 8
    @usableFromInline static let consumerTail = sideStride
    @usableFromInline static let consumerCachedHead = sideStride + 8
    @usableFromInline static let parkedProducers = sideStride + 16
    @usableFromInline static let size = 2 * sideStride
}
