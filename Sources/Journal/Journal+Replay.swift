import AccessModel

extension Journal {
    /// Remembers a replay request's id for its issuer (SPEC 4.2, with 4.1 rule 7): true the first time, false for an
    /// id this issuer used before, so the same signed request is never served twice. Kept beside the command ids in
    /// `JOURNAL.commands`, as long as they are; ids of different issuers never collide.
    public func claimReplay(issuer: String, id: String, received: Timestamp) throws -> Bool {
        try withClaims { connection in
            try connection.transaction {
                try connection.execute("""
                    CREATE TABLE IF NOT EXISTS replay_requests (
                        issuer TEXT NOT NULL,
                        id TEXT NOT NULL,
                        received_ms INTEGER NOT NULL,
                        PRIMARY KEY (issuer, id)
                    ) WITHOUT ROWID
                    """)
                _ = try connection.run("DELETE FROM replay_requests WHERE received_ms < ?",
                                       [.int(received.millisecondsSinceEpoch - Self.commandMemoryMilliseconds)])
                return try connection.run("INSERT OR IGNORE INTO replay_requests (issuer, id, received_ms) VALUES (?, ?, ?)",
                                          [.text(issuer), .text(id), .int(received.millisecondsSinceEpoch)]) == 1
            }
        }
    }
}
