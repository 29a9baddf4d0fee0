import Foundation

/// One transaction on a simulated RTU line as the line carried it: when the request began and ended, when the reply
/// began and ended (with pacing, the times a real line at the baud rate would show), for which unit and function.
/// Entries of a line in order show every request, reply and silence with its time: where an idle line's time goes.
public struct LineTraceEntry: Sendable, Hashable {
    /// `PreciseClock` nanoseconds.
    public var requestStart: UInt64
    public var requestEnd: UInt64
    public var replyStart: UInt64
    public var replyEnd: UInt64
    public var unit: UInt8
    public var function: UInt8
    /// The first register the request addresses (the read address of function 23).
    public var address: UInt16
    public var requestBytes: Int
    /// 0 when the request was not answered (another unit, a dropped reply).
    public var replyBytes: Int
}

/// A bounded record of the transactions a line served, off until `start` (one lock and an append per request).
final class LineTrace: @unchecked Sendable {
    // @unchecked: `entries` and `limit` are only touched while holding `lock`.
    private let lock = NSLock()
    private var entries: [LineTraceEntry] = []
    private var limit = 0

    func start(limit: Int) { lock.withLock { entries = []; entries.reserveCapacity(limit); self.limit = limit } }

    func record(_ entry: LineTraceEntry) {
        lock.withLock { if entries.count < limit { entries.append(entry) } }
    }

    var snapshot: [LineTraceEntry] { lock.withLock { entries } }
}

extension ModbusRTUServer {
    /// Starts recording the next `limit` transactions of this line (dropping what was recorded before).
    public func startTrace(limit: Int = 1000) { trace.start(limit: limit) }

    /// The transactions recorded since `startTrace`.
    public var traceEntries: [LineTraceEntry] { trace.snapshot }
}

extension [LineTraceEntry] {
    /// The trace as text, times in milliseconds from the first request: each request and reply with the silences
    /// between them (`gap` is the line's idle time before a request, `wait` the device's before its reply).
    public var text: String {
        guard let origin = first?.requestStart else { return "(no transactions)" }
        func ms(_ t: UInt64) -> String { String(format: "%8.1f", Double(t &- origin) / 1e6) }
        func span(_ a: UInt64, _ b: UInt64) -> String { String(format: "%6.1f", Double(Int64(bitPattern: b &- a)) / 1e6) }
        var lines = ["      t ms  unit fn  addr  req B  reply B   gap ms  req ms  wait ms  reply ms"]
        var previousEnd = origin
        for entry in self {
            let answered = entry.replyBytes > 0
            lines.append("\(ms(entry.requestStart))  \(String(format: "%4d %2d %5d %6d %8d", entry.unit, entry.function, entry.address, entry.requestBytes, entry.replyBytes))"
                + "   \(span(previousEnd, entry.requestStart))  \(span(entry.requestStart, entry.requestEnd))"
                + "   \(answered ? span(entry.requestEnd, entry.replyStart) : "     -")    \(answered ? span(entry.replyStart, entry.replyEnd) : "     -")")
            previousEnd = answered ? entry.replyEnd : entry.requestEnd
        }
        return lines.joined(separator: "\n")
    }
}
