import Foundation
import Synchronization

/// Events the journal has just committed, handed from the writer to the publisher in memory, so the publisher does
/// not read back from SQLite what was written a millisecond earlier.
///
/// Only `Journal` offers events, after the COMMIT that makes them durable and before it advances
/// `Journal.committedThrough`, in journal order. The queue is always one contiguous run of journal seqs: a batch that
/// would not fit or would not follow the last one is not taken (it stays in the journal only), and suspending,
/// retention and erasure empty the queue. So the publisher takes from it only when its head is exactly the next seq it wants, and otherwise reads back
/// from SQLite (after a restart, during a backlog, after an overflow or outage) until it reaches the head: the journal
/// stays the authority, the hand-off only saves the read.
public final class CommittedHandoff: Sendable {
    /// One committed event: what the publisher needs to send it.
    public struct Event: Sendable {
        public let journalSeq: Int64
        public let topic: String
        public let payload: String

        public init(journalSeq: Int64, topic: String, payload: String) {
            self.journalSeq = journalSeq
            self.topic = topic
            self.payload = payload
        }
    }

    /// What `take` found.
    public enum Take: Sendable {
        /// The events right after the cursor, in order.
        case events([Event])
        /// Nothing usable in memory: the next events are in the journal only (or nowhere yet).
        case readBack
    }

    private struct State {
        var events: [Event] = []
        /// Index of the first live entry of `events` (taking moves it; the array is compacted now and then).
        var head = 0
        /// Off until the publisher is connected and says so (`resume`): nobody takes events before that.
        var accepting = false
    }

    /// At most this many events wait in memory; past it the queue is emptied and the publisher reads back.
    public let capacity: Int
    /// False with `ACCESSGW_JOURNAL_READBACK=1`: nothing is offered, the publisher always reads back (the old path).
    public let enabled: Bool
    private let state: Mutex<State>

    public init(capacity: Int = 2048, enabled: Bool = CommittedHandoff.enabledByEnvironment) {
        self.capacity = capacity
        self.enabled = enabled
        state = Mutex(State())
    }

    /// `ACCESSGW_JOURNAL_READBACK=1` turns the hand-off off, for an A/B comparison with the read-back path.
    public static var enabledByEnvironment: Bool {
        ProcessInfo.processInfo.environment["ACCESSGW_JOURNAL_READBACK"] != "1"
    }

    /// Called by the journal after committing `batch` (contiguous journal seqs, ascending). A batch that does not
    /// fit, or does not follow the queue's last event, is left to the journal: the publisher sends what is queued,
    /// reads the rest back, and the next batch offered to an empty queue starts a new run.
    func offer(_ batch: [Event]) {
        guard enabled, let first = batch.first else { return }
        state.withLock { s in
            guard s.accepting else { return }
            let live = s.events.count - s.head
            if live > 0 && (s.events[s.events.count - 1].journalSeq + 1 != first.journalSeq || live + batch.count > capacity) {
                return
            }
            guard batch.count <= capacity else { return }
            if s.head > 0 && s.head * 2 >= s.events.count {
                s.events.removeFirst(s.head)
                s.head = 0
            }
            s.events += batch
        }
    }

    /// Up to `limit` events starting exactly at `cursor + 1`; older entries are dropped on the way.
    public func take(after cursor: Int64, limit: Int) -> Take {
        state.withLock { s in
            while s.head < s.events.count && s.events[s.head].journalSeq <= cursor { s.head += 1 }
            guard s.head < s.events.count, s.events[s.head].journalSeq == cursor + 1, limit > 0 else {
                if s.head == s.events.count {
                    s.events.removeAll(keepingCapacity: true)
                    s.head = 0
                }
                return .readBack
            }
            let end = min(s.events.count, s.head + limit)
            let taken = Array(s.events[s.head..<end])
            s.head = end
            if s.head == s.events.count {
                s.events.removeAll(keepingCapacity: true)
                s.head = 0
            }
            return .events(taken)
        }
    }

    /// Empties the queue and stops taking events (the broker is unreachable: what is committed meanwhile waits in the
    /// journal, not in memory); `resume` starts again.
    public func suspend() {
        state.withLock { s in
            s.accepting = false
            s.events.removeAll()
            s.head = 0
        }
    }

    public func resume() {
        state.withLock { $0.accepting = enabled }
    }

    /// Empties the queue: rows may have left the journal (retention, erasure) and must not be sent from memory.
    func reset() {
        state.withLock { s in
            s.events.removeAll(keepingCapacity: true)
            s.head = 0
        }
    }

    /// Events waiting in memory.
    public var count: Int { state.withLock { $0.events.count - $0.head } }
}
