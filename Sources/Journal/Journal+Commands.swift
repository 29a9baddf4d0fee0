import AccessModel
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A command request as the journal remembers it (SPEC 4.1 rule 7: at least 24 h).
public struct CommandRequestRecord: Sendable, Equatable {
    public var id: String
    public var issuer: String
    public var device: String
    public var command: String
    /// The request's `args` as canonical JSON (keys sorted); nil when unknown (an id taken over from a journal).
    public var args: String?
    /// The u32 id written to the device's command block, unique per device.
    public var deviceCommandID: UInt32
    /// `pending` until the bus write ends, then `written`, `expired` or `failed`.
    public var status: String
    public var reason: String?
    public var received: Timestamp

    public init(id: String, issuer: String, device: String, command: String, args: String? = nil, deviceCommandID: UInt32 = 0,
                status: String = "pending", reason: String? = nil, received: Timestamp) {
        self.id = id
        self.issuer = issuer
        self.device = device
        self.command = command
        self.args = args
        self.deviceCommandID = deviceCommandID
        self.status = status
        self.reason = reason
        self.received = received
    }
}

extension Journal {
    /// How long request ids are remembered: twice the 24 h the SPEC asks for.
    public static let commandMemoryMilliseconds: Int64 = 48 * 3_600_000

    /// Claims `request.id` of `request.issuer` in one transaction (ids are per issuer): a new id gets the device's next command id and is stored
    /// (`.claimed`), an id seen before returns what was stored (`.seen`). Called before any bus write, so two
    /// deliveries of one request can never both be written. The first device command id is random, so that a
    /// new journal does not start again at an id a device may still hold as `last_command_id`.
    ///
    /// `beforeCommit` runs inside the transaction with a new claim, before its COMMIT (the fsync): the caller may
    /// hand the command to its bus there, as long as the write waits until this returns.
    public func claimCommand(_ request: CommandRequestRecord,
                             beforeCommit: (CommandRequestRecord) -> Void = { _ in }) throws -> CommandClaim {
        try withClaims { connection in
            try connection.transaction {
                if let existing = try connection.query(Self.selectRequest + " WHERE issuer = ? AND id = ?",
                                                       [.text(request.issuer), .text(request.id)], Self.record).first {
                    return .seen(existing)
                }
                let last = try connection.scalar("SELECT last_id FROM command_counters WHERE device = ?", [.text(request.device)])
                    ?? Int64(UInt32.random(in: 1...0x7FFF_FFFF))
                let next = last >= Int64(UInt32.max) ? 1 : last + 1
                _ = try connection.run("""
                    INSERT INTO command_counters (device, last_id) VALUES (?, ?)
                    ON CONFLICT (device) DO UPDATE SET last_id = excluded.last_id
                    """, [.text(request.device), .int(next)])
                var stored = request
                stored.deviceCommandID = UInt32(next)
                _ = try connection.run("""
                    INSERT INTO command_requests (id, issuer, device, command, args, device_command_id, status, reason, received_ms)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.text(stored.id), .text(stored.issuer), .text(stored.device), .text(stored.command),
                          stored.args.map { .text($0) } ?? .null, .int(next),
                          .text(stored.status), stored.reason.map { .text($0) } ?? .null, .int(stored.received.millisecondsSinceEpoch)])
                _ = try connection.run("DELETE FROM command_requests WHERE received_ms < ?",
                                       [.int(request.received.millisecondsSinceEpoch - Self.commandMemoryMilliseconds)])
                beforeCommit(stored)
                return .claimed(stored)
            }
        }
    }

    /// Records the outcome of a claimed request.
    public func finishCommand(id: String, issuer: String, status: String, reason: String?) throws {
        try withClaims { connection in
            _ = try connection.run("UPDATE command_requests SET status = ?, reason = ? WHERE issuer = ? AND id = ?",
                                   [.text(status), reason.map { .text($0) } ?? .null, .text(issuer), .text(id)])
        }
    }

    /// The request a device's `command.executed` (code 8, `extra` = device command id) belongs to.
    public func commandRequest(device: String, deviceCommandID: UInt32) throws -> CommandRequestRecord? {
        try withClaims { connection in
            try connection.query(Self.selectRequest + " WHERE device = ? AND device_command_id = ? ORDER BY received_ms DESC LIMIT 1",
                                 [.text(device), .int(Int64(deviceCommandID))], Self.record).first
        }
    }

    /// Opens the command store now (it is otherwise opened at the first claim): the intake calls it at start, so
    /// the first command does not pay for opening the file and taking over the journal's rows. Says whether the id
    /// memory is new though the journal is not: `JOURNAL.commands` was deleted (or never copied with a restored
    /// journal), so requests written before may come again within their deadlines (SPEC 4.1 rule 7).
    ///
    /// A file that is there but lacks a command the journal audited as written (or unanswered, `no_reply`) within
    /// the last `recentMilliseconds` is not the memory those commands were written with (replaced between runs,
    /// by an older copy for instance): new too. Older commands are past any deadline (`max_ttl` ≤ 60 s).
    @discardableResult
    public func openCommandClaims(recentMilliseconds: Int64 = 60_000) throws -> CommandMemoryOpening {
        _ = try withClaims { _ in }
        guard let store = commandClaims.withLock({ $0 }) else { return .remembered }
        if store.created, !createdAtOpen {
            return .new("\(store.path) was created anew beside a journal with history: the command ids written before are forgotten")
        }
        for (issuer, id) in try recentlyWrittenCommands(since: Timestamp.now.millisecondsSinceEpoch - recentMilliseconds) {
            let held = try withClaims { try $0.scalar("SELECT count(*) FROM command_requests WHERE issuer = ? AND id = ?",
                                                      [.text(issuer), .text(id)]) } ?? 0
            if held == 0 {
                return .new("\(store.path) does not hold command \(id) of \(issuer), which the journal audited as written less than \(recentMilliseconds / 1000) s ago: it is not the id memory those commands were written with")
            }
        }
        return .remembered
    }

    /// Issuer and request id of the `command.written` (and `command.failed` with `no_reply`) audit events recorded
    /// since `millis`, among the journal's newest 100,000 events (a bounded look, by primary key).
    func recentlyWrittenCommands(since millis: Int64) throws -> [(String, String)] {
        let payloads = try withWriteConnection { connection in
            try connection.query("""
                SELECT payload FROM events WHERE jseq > (SELECT coalesce(max(jseq), 0) FROM events) - 100000
                    AND type IN ('command.written', 'command.failed') AND recorded_ms >= ?
                """, [.int(millis)]) { $0.text(0) }
        }
        return payloads.compactMap { payload in
            guard let event = try? JSONValue(parsing: Array(payload.utf8)), case let .object(data)? = event["data"],
                  case let .string(issuer)? = data.first(where: { $0.0 == "issuer" })?.1,
                  case let .string(id)? = data.first(where: { $0.0 == "command_id" })?.1 else { return nil }
            if event["type"] == .string("command.failed"), data.first(where: { $0.0 == "reason" })?.1 != .string("no_reply") { return nil }
            return (issuer, id)
        }
    }

    /// Whether `JOURNAL.commands` is still the file the store writes (one `stat`): deleted or replaced while the
    /// daemon runs, the ids it holds live on only in this process.
    public func commandMemoryState() -> FileState {
        guard let store = commandClaims.withLock({ $0 }), let opened = store.fileIdentity else { return .inPlace }
        var info = stat()
        guard stat(store.path, &info) == 0 else { return errno == ENOENT || errno == ENOTDIR ? .missing : .inPlace }
        return FileIdentity(info) == opened ? .inPlace : .replaced
    }

    /// After `commandMemoryState` found the file gone or replaced: keeps using the open store (its ids stay
    /// remembered while the daemon runs), and makes sure the next start finds no memory at the path, so that it
    /// too waits out `max_ttl`: a replacing file is moved aside to `JOURNAL.commands.replaced-MILLIS`, and the WAL
    /// and shared-memory files, which belong to the open store, are unlinked so that no new file ever takes them.
    /// Returns where the replacing file went.
    @discardableResult
    public func setAsideCommandMemory(_ state: FileState) -> String? {
        guard let store = commandClaims.withLock({ $0 }) else { return nil }
        var aside: String?
        if state == .replaced {
            let destination = "\(store.path).replaced-\(Timestamp.now.millisecondsSinceEpoch)"
            if rename(store.path, destination) == 0 { aside = destination }
        }
        for suffix in ["-wal", "-shm"] { unlink(store.path + suffix) }
        return aside
    }

    /// The file the command request ids are kept in, beside the journal.
    public var commandClaimsPath: String { CommandClaimStore.path(forJournal: path) }

    /// Runs `body` on the command store's connection, opening the store first if needed. Never the journal
    /// writer's lock (but for the one take-over at opening): a claim must not wait for an event batch.
    func withClaims<R: Sendable>(_ body: (SQLiteConnection) throws -> R) throws -> R {
        let store = try commandClaims.withLock { store in
            if let store { return store }
            let opened = try CommandClaimStore(journalPath: path) {
                try withWriteConnection { connection in
                    try connection.transaction {
                        _ = try connection.run("DELETE FROM command_requests")
                        _ = try connection.run("DELETE FROM command_counters")
                    }
                }
            }
            store = opened
            return opened
        }
        return try store.withConnection(body)
    }

    static let selectRequest = "SELECT id, issuer, device, command, device_command_id, status, reason, received_ms, args FROM command_requests"

    static func record(_ row: SQLiteConnection.Statement) -> CommandRequestRecord {
        CommandRequestRecord(id: row.text(0), issuer: row.text(1), device: row.text(2), command: row.text(3), args: row.optionalText(8),
                             deviceCommandID: UInt32(truncatingIfNeeded: row.int(4)), status: row.text(5), reason: row.optionalText(6),
                             received: Timestamp(millisecondsSinceEpoch: row.int(7)))
    }
}

/// What opening the command id memory found.
public enum CommandMemoryOpening: Sendable, Equatable {
    /// The memory is the one this journal's commands were written with (or both are new: a first start).
    case remembered
    /// The memory is new though the journal is not; why, for the log.
    case new(String)
}

public enum CommandClaim: Sendable, Equatable {
    case claimed(CommandRequestRecord)
    case seen(CommandRequestRecord)
}
