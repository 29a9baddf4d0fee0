import Synchronization

/// Messages received (on libmosquitto's network thread) and not yet taken into a batch, bounded: past `capacity`
/// events are dropped and counted rather than held without limit while the database is away. Nothing is lost by
/// it: no receipt covers a dropped event, so its gateway sends it again (SPEC 4.3).
final class Inbox: Sendable {
    private struct State {
        var items: [CollectedMessage] = []
        var waiter: CheckedContinuation<Void, Never>?
        var closed = false
        var capacity: Int
    }

    private let state: Mutex<State>

    init(capacity: Int) { state = Mutex(State(capacity: capacity)) }

    /// Adds `message`; false (and nothing added) when full. States and statuses always fit: they are few and
    /// each supersedes the one before.
    func push(_ message: CollectedMessage) -> Bool {
        let (added, waiter) = state.withLock { s -> (Bool, CheckedContinuation<Void, Never>?) in
            if case .event = message, s.items.count >= s.capacity { return (false, nil) }
            s.items.append(message)
            defer { s.waiter = nil }
            return (true, s.waiter)
        }
        waiter?.resume()
        return added
    }

    func setCapacity(_ capacity: Int) { state.withLock { $0.capacity = capacity } }

    var count: Int { state.withLock { $0.items.count } }

    /// Up to `limit` messages, oldest first.
    func take(_ limit: Int) -> [CollectedMessage] {
        state.withLock { s in
            guard s.items.count > limit else { defer { s.items.removeAll(keepingCapacity: true) }; return s.items }
            let taken = Array(s.items[..<limit])
            s.items.removeFirst(limit)
            return taken
        }
    }

    /// Returns once a message is waiting or the inbox is closed.
    func waitForMessages() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if !s.items.isEmpty || s.closed { return true }
                s.waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Wakes the waiting batch loop for good (shutdown).
    func close() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.closed = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }

    var isClosed: Bool { state.withLock { $0.closed } }
}
