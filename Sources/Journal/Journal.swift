import AccessModel
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The gateway's durable event journal (SQLite in WAL mode): every event is committed with synchronous=FULL before
/// its device is acknowledged, and stays until the broker has it and retention removes it.
///
/// Used by the journal-writer thread (append) and the MQTT publisher (unpublished, markPublished) at once. One
/// connection behind a mutex serves every write: SQLite admits one writer per database anyway, so a second writing
/// connection would only trade the mutex for SQLITE_BUSY retries (busy_timeout sleeps in millisecond steps), and the
/// next journal sequence number is state of this process that must change with the commit. The publisher's reads
/// of unpublished events use a read-only connection of their own: a WAL reader sees every committed transaction and
/// never waits for the writer's (nor its fsync). WAL readers (`JournalReader`, other processes) are never blocked. Every method blocks on disk I/O: call it from a dedicated thread, never from Swift's
/// cooperative pool.
public final class Journal: Sendable {
    private struct Writer {
        let connection: SQLiteConnection
        /// The number the next stored event gets.
        var nextJournalSeq: Int64
        /// `PRAGMA data_version` of the writing connection at the last append: it changes only when another
        /// connection (`accessgw forget` in another process) committed, which may have deleted events still waiting in
        /// the hand-off or (another writer) moved the device logs' marks.
        var dataVersion: Int64?
        /// Per device, the boot and highest seq of its records stored without a serial by a journal of schema
        /// version 1 (see `unserialledRecords`), until the device's log has passed them.
        var unserialled: [String: (boot: UInt16, seq: UInt32)]
        /// Per device log, the highest seq journalled (`device_log`), as committed.
        var logMarks: [DeviceLogKey: UInt32]
        /// The publication watermark (`publication`, schema 9): every event at or below it is published or refused.
        var watermark: Int64
        /// When the watermark last moved (its row in `publication`), nil before the first move.
        var watermarkMovedAt: Int64?
        /// The number of pending events, kept with every commit of this connection once counted; counted again when
        /// another connection committed (`pendingVersion` is then not `PRAGMA data_version` any more).
        var pending: Int?
        var pendingVersion: Int64?
    }

    /// The database file.
    public let path: String
    /// Random hex chosen when the journal was created; gateway-made event ids carry it (SPEC section 4).
    public let epoch: String
    /// An event's place for receipts (SPEC 4.3) is `gwseq = jseq - gwseqBase` (schema 10): 0 for a journal created
    /// with receipts, the publication watermark at the upgrade for an older one.
    public let gwseqBase: Int64
    private let writer: Mutex<Writer>
    /// Read-only, for `unpublished`: committed events only, without waiting for the writer's lock.
    private let publisherReads: Mutex<SQLiteConnection>
    /// Which file `path` named when the journal was opened.
    private let fileIdentity: FileIdentity?
    /// True when this open created the journal (it had no schema yet): a command id memory created beside it is
    /// a first start, not a lost memory.
    let createdAtOpen: Bool
    /// Events just committed, for the publisher (in memory, so it need not read them back).
    public let handoff: CommittedHandoff
    /// The highest journal seq whose commit has returned; stored after the commit and the hand-off.
    private let committed: Atomic<Int64>
    /// The command request ids (`JOURNAL.commands`), opened at the first use (see `Journal+Commands`).
    let commandClaims = Mutex<CommandClaimStore?>(nil)

    /// Opens the journal at `path`, creating it and its parent directory if needed.
    /// `onSchemaRebuild` is called with the number of events before a schema upgrade copies the whole table (once,
    /// on the first open by a newer gateway), so the caller can say why this start takes longer.
    public init(path: String, busyTimeout: Duration = .seconds(5), handoff: CommittedHandoff = CommittedHandoff(),
                onSchemaRebuild: (@Sendable (Int64) -> Void)? = nil) throws {
        self.path = path
        self.handoff = handoff
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        }
        Self.createPrivately(path)
        let connection = try SQLiteConnection(path: path, readOnly: false)
        try connection.setBusyTimeout(milliseconds: Int32(busyTimeout.components.seconds * 1000
                                                           + busyTimeout.components.attoseconds / 1_000_000_000_000_000))
        let fresh = try connection.scalar("PRAGMA user_version") == 0
        createdAtOpen = fresh
        if fresh {
            // Must precede both the first table and the switch to WAL, or SQLite ignores it.
            try connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
        }
        try connection.execute(JournalSchema.connectionPragmas)
        let mode = try connection.query("PRAGMA journal_mode") { $0.text(0) }.first
        guard mode == "wal" else {
            throw SQLiteError(code: 0, message: "journal_mode is \(mode ?? "unknown"), WAL is required",
                              statement: "PRAGMA journal_mode = WAL", path: path)
        }
        try JournalSchema.migrate(connection, onRebuild: onSchemaRebuild)
        fileIdentity = FileIdentity(path: path)
        epoch = try connection.journalEpoch()
        gwseqBase = try connection.scalar("SELECT gwseq_base FROM journal_identity LIMIT 1") ?? 0
        let next = try connection.latestJournalSeq() + 1
        let publication = try connection.publicationWatermark()
        writer = Mutex(Writer(connection: connection, nextJournalSeq: next, unserialled: try connection.unserialledRecords(),
                              logMarks: try connection.deviceLogMarks(), watermark: publication.watermark,
                              watermarkMovedAt: publication.movedAt))
        committed = Atomic(next - 1)
        let reads = try SQLiteConnection(path: path, readOnly: true)
        try reads.setBusyTimeout(milliseconds: Int32(busyTimeout.components.seconds * 1000))
        try reads.execute("PRAGMA cache_size = -512")  // KiB: it reads the newest rows, which the OS caches anyway
        publisherReads = Mutex(reads)
    }

    /// Creates a new journal file 0640 (owner read-write, group read: residents' data is for the service user and
    /// an admin group, never for everyone), its group that of the directory, before SQLite opens it: SQLite gives
    /// the WAL and SHM files it creates the database file's mode (and, running as root, its owner and group).
    /// An existing file is left as it is; a failure here surfaces when SQLite opens the file.
    static func createPrivately(_ path: String) {
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let parent = (path as NSString).deletingLastPathComponent
        var directory = stat()
        if stat(parent.isEmpty ? "." : parent, &directory) == 0 { _ = fchown(fd, uid_t.max, directory.st_gid) }
        _ = fchmod(fd, 0o640)
    }

    /// Where the journal file stands: an operator may delete or replace it while the daemon runs, and SQLite in
    /// WAL mode goes on committing into the unlinked file, which vanishes with the process.
    public enum FileState: Sendable, Equatable {
        /// `path` still names the file this journal writes.
        case inPlace
        /// Nothing is at `path` any more.
        case missing
        /// Another file is at `path`.
        case replaced
    }

    /// Compares the device and inode `path` names now with those it named at open: one `stat`.
    public func fileState() -> FileState {
        guard let opened = fileIdentity else { return .inPlace }
        var info = stat()
        guard stat(path, &info) == 0 else { return errno == ENOENT || errno == ENOTDIR ? .missing : .inPlace }
        return FileIdentity(info) == opened ? .inPlace : .replaced
    }

    /// Writes everything committed to this journal into a new database at `destination` (`VACUUM INTO`), reading
    /// through the open connection, so it works when the journal file was deleted; `destination` must not exist.
    public func copy(to destination: String) throws {
        try writer.withLock { _ = try $0.connection.run("VACUUM INTO ?", [.text(destination)]) }
    }

    // MARK: Journal writer

    /// Stores `entries` in one transaction and returns after COMMIT (synchronous=FULL): only then may the caller
    /// acknowledge the devices. Device records already journalled are not stored again: a device log (device, serial,
    /// boot) is read in increasing seq order, so a record at or below the highest seq journalled of its log
    /// (`device_log`, raised in the same transaction) is one read again after a crash or a refused ack. Nor are
    /// records a version 1 journal stored without a serial (the device had not been acknowledged when the journal
    /// was upgraded, so its log hands them over again, now read with the serial): those are recognised by device,
    /// boot, seq, device time and type. The per-device cursor (highest boot/seq) is updated in the same
    /// transaction.
    public func append(_ entries: [JournalEntry], baselines: [String: DeviceBaseline] = [:]) throws -> AppendOutcome {
        if entries.isEmpty && baselines.isEmpty { return AppendOutcome(stored: [], duplicates: []) }
        // Only a gateway event's CloudEvent id contains its journal seq; device records' payloads are built before
        // taking the lock, which the publisher waits on for its reads.
        let devicePayloads = entries.map { entry -> String? in
            guard case .device = entry.event.origin else { return nil }
            return CloudEvent.json(entry.event, source: entry.source, journalSeq: 0, epoch: epoch)
        }
        return try writer.withLock { writer in
            let connection = writer.connection
            var next = writer.nextJournalSeq
            // Another connection committed since the last append (`accessgw forget` in another process): events still in
            // the hand-off may be gone, and the device logs' marks are read again.
            let version = try connection.scalar("PRAGMA data_version")
            if writer.dataVersion != nil && version != writer.dataVersion {
                if handoff.enabled { handoff.reset() }
                writer.logMarks = try connection.deviceLogMarks()
            }
            writer.dataVersion = version
            var handed: [CommittedHandoff.Event] = []
            if handoff.enabled { handed.reserveCapacity(entries.count) }
            var passedUnserialled: [String] = []
            // The marks this batch raises, kept apart until the commit returns (a rollback forgets them).
            var raised: [DeviceLogKey: UInt32] = [:]
            let outcome = try connection.transaction {
                var outcome = AppendOutcome(stored: [], duplicates: [])
                outcome.stored.reserveCapacity(entries.count)
                var cursors = BatchCursors()
                var rows: [EventRow] = []
                rows.reserveCapacity(entries.count)
                for (index, entry) in entries.enumerated() {
                    let event = entry.event
                    var log: (boot: UInt16, seq: UInt32)?, serial = ""
                    if case let .device(b, s) = event.origin {
                        let serialText = event.serial.description
                        cursors.advance(event.device, serial: serialText, boot: b, seq: s, at: event.recordedTime)
                        if let legacy = writer.unserialled[event.device] {
                            if legacy.boot == b, s <= legacy.seq, !event.serial.isEmpty,
                               try connection.holdsUnserialled(event, boot: b, seq: s) {
                                outcome.duplicates.append(index)
                                continue
                            }
                            if legacy.boot != b || s > legacy.seq { passedUnserialled.append(event.device) }
                        }
                        // A device log is read in increasing seq order: at or below its mark, the record is held.
                        let key = DeviceLogKey(device: event.device, serial: serialText, boot: b)
                        if let mark = raised[key] ?? writer.logMarks[key], s <= mark {
                            outcome.duplicates.append(index)
                            continue
                        }
                        raised[key] = s
                        log = (b, s)
                        serial = serialText
                    } else if let lost = entry.lostThrough {
                        cursors.advance(event.device, serial: lost.serial.description, boot: lost.boot, seq: lost.seq,
                                        at: event.recordedTime)
                    }
                    let gwseq = next - gwseqBase
                    let payload = devicePayloads[index].map { CloudEvent.inserting(gwepoch: epoch, gwseq: gwseq, into: $0) }
                        ?? CloudEvent.json(event, source: entry.source, journalSeq: next, epoch: epoch, gwseq: gwseq)
                    rows.append(EventRow(entryIndex: index, journalSeq: next, serial: serial, log: log, payload: payload))
                    outcome.stored.append(.init(entryIndex: index, journalSeq: next))
                    if handoff.enabled { handed.append(.init(journalSeq: next, topic: entry.topic, payload: payload)) }
                    next += 1
                }
                // A few statements of many rows each, not one per event or device, bound straight from the entries.
                try connection.runRows("""
                    INSERT INTO events (jseq, device, serial, boot, seq, type, alarm, time_ms, recorded_ms, topic, payload)
                    """, count: rows.count, columns: 11, "", perStatement: 32) { index, binder in
                    let row = rows[index]
                    try binder.bind(row.journalSeq)
                    try binder.bind(entries[row.entryIndex].event.device)
                    try binder.bind(row.serial)
                    if let log = row.log {
                        try binder.bind(Int64(log.boot))
                        try binder.bind(Int64(log.seq))
                    } else {
                        try binder.bindNull()
                        try binder.bindNull()
                    }
                    try binder.bind(entries[row.entryIndex].event.type)
                    try binder.bind(entries[row.entryIndex].event.alarm ? 1 : 0)
                    try binder.bind(entries[row.entryIndex].event.time.millisecondsSinceEpoch)
                    try binder.bind(entries[row.entryIndex].event.recordedTime.millisecondsSinceEpoch)
                    try binder.bind(entries[row.entryIndex].topic)
                    try binder.bind(row.payload)
                }
                let marks = Array(raised)
                try connection.runRows("INSERT INTO device_log (device, serial, boot, seq)", count: marks.count, columns: 4,
                                       "ON CONFLICT (device, serial, boot) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > device_log.seq"
                ) { index, binder in
                    let (key, seq) = marks[index]
                    try binder.bind(key.device)
                    try binder.bind(key.serial)
                    try binder.bind(Int64(key.boot))
                    try binder.bind(Int64(seq))
                }
                // Another controller or boot id replaces the stored cursor; within a boot only a higher seq does.
                let moved = Array(cursors.byDevice)
                try connection.runRows("INSERT INTO device_cursor (device, boot, seq, updated_ms, serial)", count: moved.count,
                                       columns: 5, """
                    ON CONFLICT (device) DO UPDATE SET boot = excluded.boot, seq = excluded.seq,
                        updated_ms = excluded.updated_ms, serial = excluded.serial
                    WHERE excluded.boot != device_cursor.boot OR excluded.serial != device_cursor.serial
                        OR excluded.seq > device_cursor.seq
                    """) { index, binder in
                    let (device, cursor) = moved[index]
                    try binder.bind(device)
                    try binder.bind(Int64(cursor.boot))
                    try binder.bind(Int64(cursor.seq))
                    try binder.bind(cursor.updatedAt.millisecondsSinceEpoch)
                    try binder.bind(cursor.serial)
                }
                let now = Timestamp.now.millisecondsSinceEpoch
                for (device, baseline) in baselines {
                    try connection.run("""
                        INSERT INTO device_baseline (device, fingerprint, image, updated_ms) VALUES (?, ?, ?, ?)
                        ON CONFLICT (device) DO UPDATE SET fingerprint = excluded.fingerprint, image = excluded.image,
                            updated_ms = excluded.updated_ms
                        """, [.text(device), .text(baseline.fingerprint), .text(baseline.imageText), .int(now)])
                }
                return outcome
            }
            writer.nextJournalSeq = next
            writer.pending? += outcome.stored.count
            writer.logMarks.merge(raised) { max($0, $1) }
            for device in passedUnserialled { writer.unserialled[device] = nil }
            // Committed (synchronous=FULL): only now may the publisher see these events, first in memory, then by seq.
            handoff.offer(handed)
            committed.store(next - 1, ordering: .releasing)
            return outcome
        }
    }

    /// Per device: its latest controller and boot and the highest seq of it committed or reported lost, where a
    /// restarted gateway stands with each device's log.
    public func deviceCursors() throws -> [String: DeviceCursor] {
        try writer.withLock { try $0.connection.deviceCursors() }
    }

    /// The last committed image of every map-2 device (SPEC 3.5), by device id.
    public func deviceBaselines() throws -> [String: DeviceBaseline] {
        try writer.withLock { writer in
            var baselines: [String: DeviceBaseline] = [:]
            for row in try writer.connection.query("SELECT device, fingerprint, image, updated_ms FROM device_baseline", [], { statement in
                (statement.text(0), statement.text(1), statement.text(2), statement.int(3))
            }) {
                baselines[row.0] = DeviceBaseline(fingerprint: row.1, imageText: row.2, savedMillis: row.3 > 0 ? row.3 : nil)
            }
            return baselines
        }
    }

    /// The highest journal sequence number handed out so far (0 for an empty journal).
    public func latestJournalSeq() throws -> Int64 {
        writer.withLock { $0.nextJournalSeq - 1 }
    }

    /// The highest journal seq committed by this process (or found at open), without the writer's lock: the
    /// publisher compares its cursor with it to know whether anything new is in the journal.
    public var committedThrough: Int64 { committed.load(ordering: .acquiring) }

    /// Runs `body` on the writing connection, for the tables beside `events` (commands).
    func withWriteConnection<R: Sendable>(_ body: (SQLiteConnection) throws -> R) throws -> R {
        try writer.withLock { writer in try body(writer.connection) }
    }

    /// Stores `value` under `key` in `gateway_state` (the daemon's status JSON, for `accessgw status`).
    public func setState(key: String, value: String, now: Timestamp = .now) throws {
        try writer.withLock { writer in
            _ = try writer.connection.run("""
                INSERT INTO gateway_state (key, value, updated_ms) VALUES (?, ?, ?)
                ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms
                """, [.text(key), .text(value), .int(now.millisecondsSinceEpoch)])
        }
    }

    // MARK: Publisher

    /// Up to `limit` unpublished events after `afterJournalSeq`, in journal order; committed events only.
    public func unpublished(afterJournalSeq: Int64 = 0, limit: Int) throws -> [StoredEvent] {
        try publisherReads.withLock { try $0.unpublished(afterJournalSeq: afterJournalSeq, limit: limit) }
    }

    /// `unpublished` as the publisher sends them (journal seq, topic and payload only): what it reads back when the
    /// in-memory hand-off has overflowed.
    public func unpublishedPayloads(afterJournalSeq: Int64 = 0, limit: Int) throws -> [CommittedHandoff.Event] {
        try publisherReads.withLock { try $0.unpublishedPayloads(afterJournalSeq: afterJournalSeq, limit: limit) }
    }

    /// Marks events published (their PUBACK arrived) in one transaction; returns how many were pending.
    ///
    /// The publisher sends in journal order and PUBACKs arrive mostly in order, so this mostly moves the publication
    /// watermark (one row of `publication`) instead of writing every event's row again: the watermark moves up to
    /// just below the oldest event still pending. Only events acknowledged above that (out of order) get a
    /// `published_ms` of their own, until the watermark passes them.
    @discardableResult
    public func markPublished(_ journalSeqs: [Int64], at time: Timestamp = .now) throws -> Int {
        if journalSeqs.isEmpty { return 0 }
        return try writer.withLock { try Self.markPublished(journalSeqs, at: time, in: &$0) }
    }

    /// `markPublished`, unless the writer holds the journal right now (mid-commit, in its fsync, which now and then
    /// takes tens of milliseconds): then nil, and nothing is marked. The publisher keeps the seqs and tries again
    /// instead of stalling with room in its window.
    public func markPublishedUnlessBusy(_ journalSeqs: [Int64], at time: Timestamp = .now) throws -> Int? {
        if journalSeqs.isEmpty { return 0 }
        return try writer.withLockIfAvailable { try Self.markPublished(journalSeqs, at: time, in: &$0) }
    }

    private static func markPublished(_ journalSeqs: [Int64], at time: Timestamp, in writer: inout Writer) throws -> Int {
        let connection = writer.connection
        // A published mark lost to a power cut only means the event is sent again with the same id, so this
        // commit skips the WAL fsync (synchronous=NORMAL); the next append's FULL commit syncs it anyway.
        try connection.execute("PRAGMA synchronous = NORMAL")
        defer { try? connection.execute("PRAGMA synchronous = FULL") }
        let runs = Self.consecutiveRuns(journalSeqs)
        let (marked, watermark) = try connection.transaction {
            let watermark = try Self.advancedWatermark(writer, over: runs)
            // Every event the watermark passes now was pending only if it is one of `runs` (see above).
            var marked = try Int(connection.scalar(
                "SELECT count(*) FROM events WHERE jseq > ? AND jseq <= ? AND published_ms IS NULL",
                [.int(writer.watermark), .int(watermark)]) ?? 0)
            // PUBACKs arrive mostly in order: one UPDATE per run of consecutive seqs, not one per event.
            for run in runs where run.upperBound > watermark {
                marked += try connection.run(
                    "UPDATE events SET published_ms = ? WHERE jseq BETWEEN ? AND ? AND published_ms IS NULL",
                    [.int(time.millisecondsSinceEpoch), .int(max(run.lowerBound, watermark + 1)), .int(run.upperBound)])
            }
            try Self.recordWatermark(&writer, watermark, at: time)
            return (marked, watermark)
        }
        writer.watermark = watermark
        writer.pending? -= marked
        return marked
    }

    /// Where the watermark can move when the events in `runs` are published too: just below the oldest event above
    /// it that is still pending and not in `runs`, or to the newest event committed when there is none. Events
    /// deleted above the watermark (`forget`, retention) are passed over like published ones.
    private static func advancedWatermark(_ writer: Writer, over runs: [ClosedRange<Int64>]) throws -> Int64 {
        let newest = writer.nextJournalSeq - 1
        var watermark = writer.watermark
        while watermark < newest {
            guard let oldest = try writer.connection.scalar(
                "SELECT jseq FROM events WHERE jseq > ? AND published_ms IS NULL ORDER BY jseq LIMIT 1", [.int(watermark)])
            else { return newest }
            guard let run = runs.first(where: { $0.contains(oldest) }) else { return oldest - 1 }
            watermark = min(run.upperBound, newest)
        }
        return watermark
    }

    /// Stores a move of the watermark to `watermark` (no-op if it did not move) in `publication`: a new row, or
    /// within a second of the last move that row raised, so the table grows by at most one row a second.
    private static func recordWatermark(_ writer: inout Writer, _ watermark: Int64, at time: Timestamp) throws {
        guard watermark > writer.watermark else { return }
        let now = time.millisecondsSinceEpoch
        if let movedAt = writer.watermarkMovedAt, now >= movedAt, now - movedAt < 1000 {
            // Everything the row covers was published by `now`; the row's opening time stays in memory, so the
            // first move a second after it opens a new row.
            try writer.connection.run("UPDATE publication SET watermark = ?, published_ms = ? WHERE watermark = ?",
                                      [.int(watermark), .int(now), .int(writer.watermark)])
            return
        }
        try writer.connection.run("INSERT INTO publication (watermark, published_ms) VALUES (?, ?)",
                                  [.int(watermark), .int(now)])
        writer.watermarkMovedAt = now
    }

    /// `seqs` sorted and folded into ranges of consecutive numbers (duplicates dropped).
    static func consecutiveRuns(_ seqs: [Int64]) -> [ClosedRange<Int64>] {
        var runs: [ClosedRange<Int64>] = []
        for seq in seqs.sorted() {
            if let last = runs.last, seq <= last.upperBound + 1 {
                if seq > last.upperBound { runs[runs.count - 1] = last.lowerBound...seq }
            } else {
                runs.append(seq...seq)
            }
        }
        return runs
    }

    /// Records events the broker refused (PUBACK reason >= 0x80) with their reason code, in one transaction: they
    /// count as done (never sent again) and stay visible as refused. Returns how many were pending.
    @discardableResult
    public func markRefused(_ refusals: [(journalSeq: Int64, reason: Int32)], at time: Timestamp = .now) throws -> Int {
        if refusals.isEmpty { return 0 }
        return try writer.withLock { writer in
            let connection = writer.connection
            let (marked, watermark) = try connection.transaction {
                var marked = 0
                for (jseq, reason) in refusals where jseq > writer.watermark {
                    marked += try connection.run(
                        "UPDATE events SET published_ms = ?, refused = ? WHERE jseq = ? AND published_ms IS NULL",
                        [.int(time.millisecondsSinceEpoch), .int(Int64(reason)), .int(jseq)])
                }
                // A refused event right above the watermark no longer holds it back.
                let watermark = try Self.advancedWatermark(writer, over: [])
                try Self.recordWatermark(&writer, watermark, at: time)
                return (marked, watermark)
            }
            writer.watermark = watermark
            writer.pending? -= marked
            return marked
        }
    }

    /// Up to `limit` refused events after `journalSeq`, oldest first (the `events_refused` index).
    public func refusedEvents(after journalSeq: Int64, limit: Int) throws -> [RefusedEvent] {
        try writer.withLock { writer in
            try writer.connection.query("SELECT jseq, topic, payload FROM events WHERE refused IS NOT NULL AND jseq > ? ORDER BY jseq LIMIT ?",
                                        [.int(journalSeq), .int(Int64(limit))]) {
                RefusedEvent(journalSeq: $0.int(0), topic: $0.text(1), payload: $0.text(2))
            }
        }
    }

    /// The broker took these refused events after all: they count as published from now on, no longer refused.
    public func clearRefused(_ journalSeqs: [Int64]) throws {
        if journalSeqs.isEmpty { return }
        try writer.withLock { writer in
            let connection = writer.connection
            try connection.transaction {
                for jseq in journalSeqs {
                    _ = try connection.run("UPDATE events SET refused = NULL WHERE jseq = ? AND refused IS NOT NULL", [.int(jseq)])
                }
            }
        }
    }

    /// The number of events the broker refused.
    public func refusedCount() throws -> Int {
        try writer.withLock { try $0.connection.refusedCount() }
    }

    /// The number of events not yet published: counted once, then kept with this journal's commits (the status
    /// asks every second, and a broker down for a day leaves many pending events to read), counted again after
    /// another process changed the journal (`accessgw forget`).
    public func pendingCount() throws -> Int {
        try writer.withLock { writer in
            let version = try writer.connection.scalar("PRAGMA data_version")
            if let pending = writer.pending, version == writer.pendingVersion { return pending }
            let pending = try writer.connection.pendingCount()
            writer.pending = pending
            writer.pendingVersion = version
            return pending
        }
    }

    /// Unpublished events per device (for the metrics and the status JSON).
    public func pendingCountByDevice() throws -> [String: Int] {
        try writer.withLock { try $0.connection.pendingCountByDevice() }
    }

    /// The oldest event not yet published, or nil when the broker has everything.
    public func oldestPending() throws -> StoredEvent? {
        try writer.withLock { try $0.connection.oldestPending() }
    }

    // MARK: Retention

    /// Copies the WAL into the database file and truncates the WAL (`PRAGMA wal_checkpoint(TRUNCATE)`); SQLite also
    /// checkpoints on its own every 1000 pages.
    public func checkpoint() throws {
        try writer.withLock { try $0.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    /// Bytes of the database in use (pages in use × page size; see `enforceRetention`).
    public func sizeInUse() throws -> Int64 {
        try writer.withLock { try $0.connection.sizeInUse() }
    }

    /// Deletes published events recorded before `now - maxAge`; then, while the journal uses more than `maxBytes`,
    /// the oldest published events, and only if that is not enough the oldest unpublished ones, reported in
    /// `unpublishedDropped`.
    ///
    /// Size is measured in pages in use ((page_count - freelist_count) × page_size): it is what the file really needs,
    /// indexes and overhead included, and freed pages are reused before the file grows; `PRAGMA incremental_vacuum`
    /// then hands them back to the file system. Rows are deleted in chunks sized from the average row size, and the
    /// size is measured again after each chunk.
    ///
    /// With `coverage` (receipts on, SPEC 4.3) the deleted events' places that it does not confirm are counted in
    /// the outcome, for the caller's `gateway.events_unconfirmed_expired`: nothing unconfirmed goes silently.
    public func enforceRetention(maxAge: Duration, maxBytes: Int64, now: Timestamp = .now,
                                 coverage: ReceiptCoverage? = nil) throws -> RetentionOutcome {
        try writer.withLock { writer in
            let connection = writer.connection
            let cutoff = now.millisecondsSinceEpoch - Int64(maxAge.components.seconds * 1000)
                - maxAge.components.attoseconds / 1_000_000_000_000_000
            let bytesBefore = try connection.sizeInUse()
            var outcome = RetentionOutcome(expired: 0, publishedDroppedForSize: 0, unpublishedDropped: 0,
                                           bytesBefore: bytesBefore, bytesAfter: bytesBefore)
            let watermark = SQLiteValue.int(writer.watermark)
            let base = gwseqBase
            var unconfirmed: [Int64] = []
            // Deletes and, with receipts, notes the places of the deleted events no receipt confirms.
            let delete: (String, [SQLiteValue]) throws -> Int = { sql, values in
                guard let coverage else { return try connection.run(sql, values) }
                let deleted = try connection.query(sql + " RETURNING jseq", values) { $0.int(0) }
                unconfirmed += deleted.lazy.map { $0 - base }.filter { $0 >= 1 && !coverage.covers($0) }
                return deleted.count
            }
            try connection.transaction {
                try connection.raiseHandedOutMark()
                outcome.expired = try delete(
                    "DELETE FROM events WHERE recorded_ms < ? AND (jseq <= ? OR published_ms IS NOT NULL)",
                    [.int(cutoff), watermark])
                outcome.publishedDroppedForSize = try deleteOldestWhileOver(
                    maxBytes, connection, where: "jseq <= ? OR published_ms IS NOT NULL", watermark, delete: delete)
                outcome.unpublishedDropped = try deleteOldestWhileOver(
                    maxBytes, connection, where: "jseq > ? AND published_ms IS NULL", watermark, delete: delete)
                // The watermark's moves below the oldest event left tell nothing any more; the last one stays.
                try connection.run("""
                    DELETE FROM publication WHERE watermark < (SELECT min(jseq) FROM events)
                        AND watermark < (SELECT max(watermark) FROM publication)
                    """)
            }
            if let first = unconfirmed.min(), let last = unconfirmed.max() {
                outcome.unconfirmedDeleted = unconfirmed.count
                outcome.unconfirmedPlaces = first...last
            }
            writer.pending? -= outcome.unpublishedDropped
            // Dropped unpublished events must not be sent from memory after they were reported lost.
            if outcome.unpublishedDropped > 0 { handoff.reset() }
            if outcome.expired + outcome.publishedDroppedForSize + outcome.unpublishedDropped > 0 {
                try connection.execute("PRAGMA incremental_vacuum")
            }
            outcome.bytesAfter = try connection.sizeInUse()
            return outcome
        }
    }

    private func deleteOldestWhileOver(_ maxBytes: Int64, _ connection: SQLiteConnection, where condition: String,
                                       _ value: SQLiteValue, delete: (String, [SQLiteValue]) throws -> Int) throws -> Int {
        var deleted = 0
        while true {
            let used = try connection.sizeInUse()
            guard used > maxBytes else { break }
            let rows = try connection.scalar("SELECT count(*) FROM events") ?? 0
            guard rows > 0 else { break }
            let average = max(1, used / rows)
            let chunk = max(1, (used - maxBytes + average - 1) / average)
            let removed = try delete(
                "DELETE FROM events WHERE jseq IN (SELECT jseq FROM events WHERE \(condition) ORDER BY jseq LIMIT ?)",
                [value, .int(chunk)])
            if removed == 0 { break }
            deleted += removed
        }
        return deleted
    }
}

/// One event of a batch to insert: what `Journal.append` decided for it beside its entry.
private struct EventRow {
    var entryIndex: Int
    var journalSeq: Int64
    /// The controller's serial ('' for gateway events and devices without one).
    var serial: String
    /// Boot and seq of a device record; nil for the gateway's own events.
    var log: (boot: UInt16, seq: UInt32)?
    var payload: String
}

/// The device cursors of one batch, folded in memory so each device costs one upsert per commit.
private struct BatchCursors {
    var byDevice: [String: DeviceCursor] = [:]

    mutating func advance(_ device: String, serial: String, boot: UInt16, seq: UInt32, at time: Timestamp) {
        if let current = byDevice[device], current.boot == boot, current.serial == serial, current.seq >= seq { return }
        byDevice[device] = DeviceCursor(boot: boot, seq: seq, updatedAt: time, serial: serial)
    }
}

/// A file's device and inode numbers: what a path names.
struct FileIdentity: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64

    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.init(info)
    }
}
