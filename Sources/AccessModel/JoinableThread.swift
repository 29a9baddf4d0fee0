#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A POSIX thread running one blocking loop (a bus poller, the journal writer, a simulator's socket), so
/// blocking calls stay off Swift's cooperative thread pool; `join()` waits for the loop to return.
public final class JoinableThread: Sendable {
    // Sendable: `thread` is written once in init before the instance is shared.
    nonisolated(unsafe) private var thread = pthread_t()

    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Starts `body` on a new thread.
    public init(_ body: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
            body.run()
            return nil
        }, context)
        precondition(rc == 0, "pthread_create failed with \(rc)")
    }

    /// Lets the thread free itself when its body returns; it must not be joined afterwards.
    public func detach() {
        pthread_detach(thread)
    }

    /// Waits for the thread's body to return.
    public func join() {
        pthread_join(thread, nil)
    }
}
