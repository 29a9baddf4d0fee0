import DeviceProfiles
import Simulators

/// One device's event log (SPEC 3.4, the simulators' `EventLog`) with the faults a schedule injects, and the
/// truth the invariants are checked against: every event it recorded and what became of it.
struct SimulatedDevice {
    enum RequestFault { case timeout, misrouted }
    enum Failure: Error, Equatable {
        /// Exception 03 (illegal data value).
        case refused
        case timeout
        /// A reply carrying another unit's id, which the transport rejects (finding 4).
        case misrouted
        /// A header no device following SPEC 3.4 can hold.
        case garbled
    }

    var log: EventLog
    var boot: UInt16
    /// Every event recorded, in order, as `boot << 32 | seq`, and its position in that order.
    var history: [UInt64] = []
    var position: [UInt64: Int] = [:]
    /// Event type (0..<3) of each recorded event.
    var types: [UInt64: Int] = [:]
    /// Events overwritten before the gateway acknowledged them: the device's loss, which must be reported.
    var overwrittenUnread: Set<UInt64> = []
    /// Events a restart forgot before they were acknowledged: nobody can see or report these.
    var forgotten: Set<UInt64> = []

    /// Schedule clock of the last loss of an unread event (overwritten, or released by an ack meant for the
    /// previous boot), and of the last window read by the running gateway.
    var lastOverwrite: Int64 = -1
    var lastReadByGateway: Int64 = -1

    var refuseNextAck = false
    var gapInNextWindow = false
    var nextRequestFault: RequestFault?

    init(capacity: Int, boot: UInt16, freesAcknowledged: Bool = false) {
        log = EventLog(capacity: capacity)
        log.freesAcknowledged = freesAcknowledged
        self.boot = boot
    }

    static func key(_ boot: UInt16, _ seq: UInt32) -> UInt64 { UInt64(boot) << 32 | UInt64(seq) }

    mutating func record(type: Int, at clock: Int64) {
        if log.head >= UInt32(log.capacity) {
            let evicted = log.head + 1 - UInt32(log.capacity)
            if evicted > log.ack {
                overwrittenUnread.insert(Self.key(boot, evicted))
                lastOverwrite = clock
            }
        }
        let seq = log.append(LoggedEvent(seq: 0, time: 0, millis: 0, code: UInt16(type), point: 0, direction: 0, flags: 0,
                                         value: 0, extra: 0, subject: []))
        let key = Self.key(boot, seq)
        position[key] = history.count
        history.append(key)
        types[key] = type
    }

    /// A factory reset or firmware update: new boot id, seqs restart at 1, unacknowledged events are gone.
    mutating func reboot() {
        if log.head > 0 {
            let first = max(log.ack + 1, log.tail)
            if first <= log.head { for seq in first...log.head { forgotten.insert(Self.key(boot, seq)) } }
        }
        log.clear()
        boot &+= 1
    }

    mutating func takeRequestFault() -> Failure? {
        defer { nextRequestFault = nil }
        switch nextRequestFault {
        case .timeout: return .timeout
        case .misrouted: return .misrouted
        case nil: return nil
        }
    }

    /// A read of the header, or of header and window (function 3 at HR 100).
    mutating func read(window: Bool) -> Result<(EventLogHeader, [UInt32]?), Failure> {
        if let failure = takeRequestFault() { return .failure(failure) }
        var seqs = window ? log.window(limit: 3).map(\.seq) : nil
        if window, gapInNextWindow, let all = seqs, all.count >= 2 {
            gapInNextWindow = false
            seqs = Array(all.dropFirst())
        }
        let flags: UInt16 = (log.overwritten ? 1 : 0) | (log.nearlyFull ? 2 : 0)
        let header = EventLogHeader(headSeq: log.head, tailSeq: log.tail, bootID: boot,
                                    windowCount: UInt16(seqs?.count ?? min(3, Int(log.unread))), ackSeq: log.ack,
                                    unread: log.unread, logFlags: flags)
        return .success((header, seqs))
    }

    /// A write of `ack_seq` (function 16 at HR 106). Returns the seqs it released; `applied` says whether a request
    /// that failed still reached the device.
    mutating func writeAck(_ seq: UInt32, appliedDespiteFailure: Bool) -> (released: ClosedRange<UInt32>?, failure: Failure?) {
        if refuseNextAck {
            refuseNextAck = false
            return (nil, .refused)
        }
        let failure = takeRequestFault()
        if failure != nil, !appliedDespiteFailure { return (nil, failure) }
        let before = log.ack
        // Before the ack: a log that frees acknowledged records moves its tail with it.
        let floor = log.tail == 0 ? 0 : log.tail - 1
        do { try log.acknowledge(seq) } catch { return (nil, failure ?? .refused) }
        let first = max(before, floor) + 1
        return (first <= log.ack ? first...log.ack : nil, failure)
    }
}
