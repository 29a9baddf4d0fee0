import AccessModel

/// A command request as the journal remembers it (SPEC 4.1 rule 7: at least 24 h).
public struct CommandRequestRecord: Sendable, Equatable {
    public var id: String
    public var issuer: String
    public var device: String
    public var command: String
    /// The u32 id written to the device's command block, unique per device.
    public var deviceCommandID: UInt32
    /// `pending` until the bus write ends, then `written`, `expired` or `failed`.
    public var status: String
    public var reason: String?
    public var received: Timestamp

    public init(id: String, issuer: String, device: String, command: String, deviceCommandID: UInt32 = 0,
                status: String = "pending", reason: String? = nil, received: Timestamp) {
        self.id = id
        self.issuer = issuer
        self.device = device
        self.command = command
        self.deviceCommandID = deviceCommandID
        self.status = status
        self.reason = reason
        self.received = received
    }
}

extension Journal {
    /// How long request ids are remembered: twice the 24 h the SPEC asks for.
    public static let commandMemoryMilliseconds: Int64 = 48 * 3_600_000

    /// Claims `request.id` in one transaction: a new id gets the device's next command id and is stored
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
                if let existing = try connection.query(Self.selectRequest + " WHERE id = ?", [.text(request.id)], Self.record).first {
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
                    INSERT INTO command_requests (id, issuer, device, command, device_command_id, status, reason, received_ms)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.text(stored.id), .text(stored.issuer), .text(stored.device), .text(stored.command), .int(next),
                          .text(stored.status), stored.reason.map { .text($0) } ?? .null, .int(stored.received.millisecondsSinceEpoch)])
                _ = try connection.run("DELETE FROM command_requests WHERE received_ms < ?",
                                       [.int(request.received.millisecondsSinceEpoch - Self.commandMemoryMilliseconds)])
                beforeCommit(stored)
                return .claimed(stored)
            }
        }
    }

    /// Records the outcome of a claimed request.
    public func finishCommand(id: String, status: String, reason: String?) throws {
        try withClaims { connection in
            _ = try connection.run("UPDATE command_requests SET status = ?, reason = ? WHERE id = ?",
                                   [.text(status), reason.map { .text($0) } ?? .null, .text(id)])
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
    /// the first command does not pay for opening the file and taking over the journal's rows.
    public func openCommandClaims() throws {
        _ = try withClaims { _ in }
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

    static let selectRequest = "SELECT id, issuer, device, command, device_command_id, status, reason, received_ms FROM command_requests"

    static func record(_ row: SQLiteConnection.Statement) -> CommandRequestRecord {
        CommandRequestRecord(id: row.text(0), issuer: row.text(1), device: row.text(2), command: row.text(3),
                             deviceCommandID: UInt32(truncatingIfNeeded: row.int(4)), status: row.text(5), reason: row.optionalText(6),
                             received: Timestamp(millisecondsSinceEpoch: row.int(7)))
    }
}

public enum CommandClaim: Sendable, Equatable {
    case claimed(CommandRequestRecord)
    case seen(CommandRequestRecord)
}
