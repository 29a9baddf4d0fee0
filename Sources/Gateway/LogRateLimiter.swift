/// Which repeats of a noisy log message to write and which to count (pure: times are passed in).
///
/// Per kind and subject (a device, or the broker): the first occurrence is written; repeats within `window` are
/// counted, and when the window ends one summary says how many ("… 37 more timeouts in the last 60 s"). While the
/// repeats go on, every window ends in one summary and nothing else; a window without repeats ends the run, so the
/// next occurrence is written in full again. A kind that `ends` others (a broker connection) closes their runs at once.
struct LogRateLimiter {
    struct Key: Hashable, Sendable {
        var kind: String
        var subject: String
    }

    enum Decision: Equatable {
        /// Write it.
        case write
        /// Count it; if `flushAtMillis` is set, call `flush` then (no flush is pending for this run yet).
        case suppress(flushAtMillis: Int64?)
    }

    struct Summary: Equatable {
        var key: Key
        var count: Int
        var millis: Int64
    }

    private struct Run {
        var startMillis: Int64
        var count = 0
        var flushPending = false
    }

    let windowMillis: Int64
    private var runs: [Key: Run] = [:]

    init(windowMillis: Int64) { self.windowMillis = windowMillis }

    mutating func admit(_ key: Key, nowMillis: Int64) -> Decision {
        guard var run = runs[key], run.flushPending || nowMillis - run.startMillis < windowMillis else {
            runs[key] = Run(startMillis: nowMillis)
            return .write
        }
        run.count += 1
        let scheduleAt: Int64? = run.flushPending ? nil : max(nowMillis, run.startMillis + windowMillis)
        run.flushPending = true
        runs[key] = run
        return .suppress(flushAtMillis: scheduleAt)
    }

    /// The window of `key` ended: the summary of its repeats, if there were any; a new window starts now.
    mutating func flush(_ key: Key, nowMillis: Int64) -> Summary? {
        guard var run = runs[key], run.flushPending else { return nil }
        let summary = Summary(key: key, count: run.count, millis: nowMillis - run.startMillis)
        run = Run(startMillis: nowMillis)
        runs[key] = run
        return summary.count > 0 ? summary : nil
    }

    /// Every window ends now: the summaries of all runs with counted repeats (at exit).
    mutating func flushAll(nowMillis: Int64) -> [Summary] {
        runs.keys.sorted { ($0.kind, $0.subject) < ($1.kind, $1.subject) }.compactMap { flush($0, nowMillis: nowMillis) }
    }

    /// `kinds` of `subject` are over (the broker connected): their pending summaries, and their runs forgotten.
    mutating func end(_ kinds: [String], subject: String, nowMillis: Int64) -> [Summary] {
        kinds.compactMap { kind in
            let key = Key(kind: kind, subject: subject)
            guard let run = runs.removeValue(forKey: key), run.count > 0 else { return nil }
            return Summary(key: key, count: run.count, millis: nowMillis - run.startMillis)
        }
    }
}
