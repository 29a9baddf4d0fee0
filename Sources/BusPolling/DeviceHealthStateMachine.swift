/// Whether a device answers (SPEC 3 "device.online / device.offline"), and how long to wait before asking again.
/// Pure: the poller reports each poll's result and acts on the transition it gets back.
public struct DeviceHealthStateMachine: Sendable {
    public enum Status: Sendable, Equatable { case unknown, online, offline }

    public enum Transition: Sendable, Equatable {
        case cameOnline
        /// The third consecutive failure: the device is offline.
        case wentOffline
    }

    public static let failuresBeforeOffline = 3
    public static let maximumBackoffMillis: Int64 = 30_000

    public private(set) var status: Status = .unknown
    public private(set) var consecutiveFailures = 0

    public init() {}

    public mutating func pollSucceeded() -> Transition? {
        consecutiveFailures = 0
        guard status != .online else { return nil }
        status = .online
        return .cameOnline
    }

    public mutating func pollFailed() -> Transition? {
        consecutiveFailures += 1
        guard status != .offline, consecutiveFailures >= Self.failuresBeforeOffline else { return nil }
        status = .offline
        return .wentOffline
    }

    /// Milliseconds until the next poll: the poll interval while answering, doubling up to 30 s while offline,
    /// so a dead device costs its bus at most one timeout per retry.
    public func nextPollDelay(pollMillis: Int64) -> Int64 {
        guard status == .offline else { return pollMillis }
        let doublings = min(consecutiveFailures - Self.failuresBeforeOffline + 1, 16)
        return min(Self.maximumBackoffMillis, max(pollMillis, 250) << Int64(doublings))
    }
}
