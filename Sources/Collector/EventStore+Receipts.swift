import AccessModel
import Logging
import PostgresNIO

extension EventStore {
    /// How many runs of filled places above `through` one look reads: enough for 64 ranges after merging
    /// the expired places in.
    static let runsRead = 256

    /// The coverage of `key` from what is committed, or nil when a receipt for it was published less than a second
    /// ago (by this collector or another of the group: the claim is a row in `receipt_state`, so the rate holds
    /// across the share group). `through` only grows: it is kept in `receipt_state` and the next look starts there.
    public func claimReceipt(for key: ReceiptKey) async throws(StoreError) -> ReceiptCoverage? {
        let connection = try await open()
        do {
            return try await claim(key, on: connection)
        } catch let error as StoreError {
            if error.kind == .unavailable { await disconnect() }
            throw error
        } catch {
            let failure = StoreError.from(error, database: settings.description)
            if failure.kind == .unavailable { await disconnect() }
            throw failure
        }
    }

    private func claim(_ key: ReceiptKey, on connection: PostgresConnection) async throws -> ReceiptCoverage? {
        let logger = logger
        var known: Int64?
        let claim: PostgresQuery = """
            INSERT INTO receipt_state (site, gateway, gwepoch, through, published_at)
            VALUES (\(key.site), \(key.gateway), \(key.epoch), 0, clock_timestamp())
            ON CONFLICT (site, gateway, gwepoch) DO UPDATE SET published_at = clock_timestamp()
                WHERE receipt_state.published_at IS NULL OR receipt_state.published_at <= clock_timestamp() - interval '1 second'
            RETURNING through
            """
        for try await through in try await connection.query(claim, logger: logger).decode(Int64.self) { known = through }
        guard let start = known else { return nil }
        var runs: [ClosedRange<Int64>] = []
        let islands: PostgresQuery = """
            SELECT min(gwseq), max(gwseq) FROM (
                SELECT gwseq, gwseq - row_number() OVER (ORDER BY gwseq) AS island FROM (
                    SELECT DISTINCT gwseq FROM events
                    WHERE site = \(key.site) AND gateway = \(key.gateway) AND gwepoch = \(key.epoch) AND gwseq > \(start)
                ) AS places
            ) AS numbered GROUP BY island ORDER BY 1 LIMIT \(Self.runsRead)
            """
        for try await (low, high) in try await connection.query(islands, logger: logger).decode((Int64, Int64).self) {
            runs.append(low...high)
        }
        let expired: PostgresQuery = """
            SELECT from_gwseq, to_gwseq FROM expired_places
            WHERE site = \(key.site) AND gateway = \(key.gateway) AND gwepoch = \(key.epoch) AND to_gwseq > \(start)
            ORDER BY from_gwseq LIMIT \(Self.runsRead)
            """
        for try await (low, high) in try await connection.query(expired, logger: logger).decode((Int64, Int64).self) {
            runs.append(low...high)
        }
        // Runs beyond the first `runsRead` of each kind could only add ranges past the 64th, or extend `through`
        // past a run the next look reads anyway.
        let coverage = ReceiptCoverage.compute(through: start, filled: runs)
        if coverage.through > start {
            try await connection.query("""
                UPDATE receipt_state SET through = GREATEST(through, \(coverage.through))
                WHERE site = \(key.site) AND gateway = \(key.gateway) AND gwepoch = \(key.epoch)
                """, logger: logger)
        }
        return coverage
    }
}
