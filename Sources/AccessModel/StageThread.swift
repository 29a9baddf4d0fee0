import Synchronization

/// The thread of one pipeline stage (a bus poller, the journal writer, the publisher, housekeeping): it runs the
/// stage's loop until asked to stop, and `stop()` wakes the loop so it notices at once, then waits for it.
public final class StageThread: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let thread = Mutex<JoinableThread?>(nil)
    private let wake: @Sendable () -> Void
    /// The thread's name (`gw-writer`, …), shown by top -H and /proc; the bench sums the CPU of the `gw-` threads.
    private let name: String

    /// `wake` interrupts the loop's sleep (rings the doorbell it waits on).
    public init(name: String, wake: @escaping @Sendable () -> Void = {}) {
        self.name = name
        self.wake = wake
    }

    /// Whether `stop()` was called: the loop checks it on every turn.
    public var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// Runs `loop` on a thread of its own.
    public func start(_ loop: @escaping @Sendable () -> Void) {
        let name = name
        thread.withLock { $0 = JoinableThread { setCurrentThreadName(name); loop() } }
    }

    /// Asks the loop to stop, wakes it, and waits until it returned.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        wake()
        let running = thread.withLock { current -> JoinableThread? in
            defer { current = nil }
            return current
        }
        running?.join()
    }
}
