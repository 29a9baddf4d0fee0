#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Names the calling thread (at most 15 bytes are kept): the gateway's threads are called `gw-…`.
public func setCurrentThreadName(_ name: String) {
    #if os(Linux)
    _ = glibcSetThreadName(pthread_self(), String(decoding: name.utf8.prefix(15), as: UTF8.self))
    #endif
}

#if os(Linux)
/// glibc's `pthread_setname_np`, which the Glibc module leaves out (it is behind _GNU_SOURCE).
@_silgen_name("pthread_setname_np")
private func glibcSetThreadName(_ thread: pthread_t, _ name: UnsafePointer<CChar>) -> Int32
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
