/// The journal as the schedule sees it: committed rows survive a crash, a batch not yet committed does not.
/// Device records are stored once, as the real one (schema 8) does it: a record at or below the highest seq stored of
/// its device log (device, boot) is taken for one read again and skipped. `isCommitted` answers by the exact
/// (device, boot, seq), so a record that mark skipped without ever storing it shows up as a loss in the checks.
struct SimulatedJournal {
    enum Kind: Equatable, CustomStringConvertible {
        case device(boot: UInt16, seq: UInt32, type: Int)
        case lost(boot: UInt16, range: ClosedRange<UInt32>)
        case online, offline

        var description: String {
            switch self {
            case let .device(boot, seq, type): "event \(boot).\(seq) type \(type)"
            case let .lost(boot, range): "events_lost \(boot).\(range.lowerBound)...\(range.upperBound)"
            case .online: "device.online"
            case .offline: "device.offline"
            }
        }
    }

    enum State { case pending, published, refused }

    struct Row {
        let jseq: Int64
        let device: Int
        let kind: Kind
        var state: State
    }

    private(set) var rows: [Row] = []
    /// `Journal.append`'s device cursor: per device the latest boot and the highest seq of it stored or reported lost
    /// (another boot replaces it, within a boot only a higher seq), committed with the rows.
    private(set) var cursors: [Int: (boot: UInt16, seq: UInt32)] = [:]
    private var keys: Set<UInt64> = []
    /// Per device log (`key(device:boot:seq: 0)`), the highest seq stored: `Journal.append`'s `device_log`.
    private var marks: [UInt64: UInt32] = [:]
    private(set) var pendingCount = 0
    /// `Journal`'s publication watermark (schema 9): every row at or below it is published or refused, whatever its
    /// `state` says; only rows marked above it (acknowledged out of order, refused) have a state of their own.
    private(set) var watermark: Int64 = 0

    static func key(device: Int, boot: UInt16, seq: UInt32) -> UInt64 {
        UInt64(device) << 48 | UInt64(boot) << 32 | UInt64(seq)
    }

    func isCommitted(device: Int, boot: UInt16, seq: UInt32) -> Bool {
        keys.contains(Self.key(device: device, boot: boot, seq: seq))
    }

    /// One transaction: every record of the batch, duplicates of device records skipped.
    mutating func commit(_ batch: [ScheduledRecord]) {
        for record in batch {
            switch record.kind {
            case let .device(boot, seq, _): advanceCursor(record.device, boot: boot, seq: seq)
            case let .lost(boot, range): advanceCursor(record.device, boot: boot, seq: range.upperBound)
            case .online, .offline: break
            }
            if case let .device(boot, seq, _) = record.kind {
                let log = Self.key(device: record.device, boot: boot, seq: 0)
                if let mark = marks[log], seq <= mark { continue }
                marks[log] = seq
                keys.insert(Self.key(device: record.device, boot: boot, seq: seq))
            }
            rows.append(Row(jseq: Int64(rows.count + 1), device: record.device, kind: record.kind, state: .pending))
            pendingCount += 1
        }
    }

    private mutating func advanceCursor(_ device: Int, boot: UInt16, seq: UInt32) {
        if let current = cursors[device], current.boot == boot, current.seq >= seq { return }
        cursors[device] = (boot, seq)
    }

    func isPending(_ row: Row) -> Bool { row.jseq > watermark && row.state == .pending }

    /// Up to `limit` pending rows after `jseq` (and after the watermark), in journal order.
    func unpublished(after jseq: Int64, limit: Int) -> [Row] {
        var found: [Row] = []
        var index = Int(max(jseq, watermark))
        while index < rows.count, found.count < limit {
            if rows[index].state == .pending { found.append(rows[index]) }
            index += 1
        }
        return found
    }

    /// `Journal.markPublished` / `markRefused` of one batch: the rows above the watermark get their state, and the
    /// watermark moves up to just below the oldest row still pending. `outOfOrderDropped`: a row acknowledged above
    /// the watermark's reach is not marked at all (the defect a watermark invites).
    mutating func mark(_ batch: [(jseq: Int64, state: State)], outOfOrderDropped: Bool = false) {
        for (jseq, state) in batch.sorted(by: { $0.jseq < $1.jseq }) where jseq > watermark {
            if outOfOrderDropped, jseq > watermark + 1 { continue }
            let index = Int(jseq - 1)
            guard rows[index].state == .pending else { continue }
            rows[index].state = state
            pendingCount -= 1
            while watermark < Int64(rows.count), rows[Int(watermark)].state != .pending { watermark += 1 }
        }
    }
}

/// An entry on the ring between a bus poller and the journal writer.
struct ScheduledRecord {
    let device: Int
    let kind: SimulatedJournal.Kind
}
