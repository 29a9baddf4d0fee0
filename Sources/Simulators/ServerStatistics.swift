import Foundation
import Synchronization

/// Counters a Modbus server keeps about the frames it saw, for tests and the one-line summary.
public struct ServerStatistics: Sendable, Hashable {
    /// Requests executed or answered with an exception.
    public var requests = 0
    /// Frames that could not be parsed: truncated or inconsistent MBAP headers, impossible RTU lengths.
    public var malformedFrames = 0
    /// RTU frames whose CRC did not match; never answered.
    public var crcErrors = 0
    /// RTU frames for a unit this line does not serve; ignored silently.
    public var otherUnits = 0
    /// Requests not answered because of an injected fault.
    public var dropped = 0
    /// TCP connections accepted.
    public var connections = 0
    /// RTU: bytes of the answered requests and of their replies, for the bus-efficiency benchmark.
    public var requestBytes = 0
    public var replyBytes = 0

    public init() {}
}

/// A lock-protected `ServerStatistics` shared between a server's threads; the request count, taken once per request,
/// is an atomic instead.
///
/// `@unchecked Sendable` is safe because `value` is only touched while holding `lock`.
final class StatisticsCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = ServerStatistics()
    private let requests = Atomic<Int>(0)

    func update(_ change: (inout ServerStatistics) -> Void) { lock.withLock { change(&value) } }

    /// One more request executed or answered with an exception.
    func countRequest() { requests.wrappingAdd(1, ordering: .relaxed) }

    var snapshot: ServerStatistics {
        var snapshot = lock.withLock { value }
        snapshot.requests += requests.load(ordering: .relaxed)
        return snapshot
    }
}
