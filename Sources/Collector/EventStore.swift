import AccessModel
import Logging
import PostgresNIO

/// A failure of the database, for the operator: `unavailable` (connection refused, lost, the server shutting
/// down: retried with backoff) or `refused` (the server rejected the data itself: the batch is tried row by row).
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case unavailable, refused, schemaTooNew }
    public var kind: Kind
    public var message: String
    public var description: String { message }

    /// Classifies a PostgresNIO error: SQLSTATE classes 22 (data exception), 23 (integrity), 42 (syntax or
    /// access rule) and 54 (program limit) are refusals of what was sent; anything else is the link or the server.
    static func from(_ error: any Error, database: String) -> StoreError {
        guard let error = error as? PSQLError else {
            return StoreError(kind: .unavailable, message: "database \(database): \(error)")
        }
        if error.code == .server, let state = error.serverInfo?[.sqlState] {
            let text = error.serverInfo?[.message] ?? "error"
            let refused = ["22", "23", "42", "54"].contains(String(state.prefix(2)))
            return StoreError(kind: refused ? .refused : .unavailable, message: "database \(database): \(text) (SQLSTATE \(state))")
        }
        let cause: String
        switch error.code {
        case .connectionError:
            let underlying = error.underlying.map { "\($0)" } ?? ""
            cause = underlying.contains("Connection refused") ? "cannot connect: connection refused"
                : underlying.contains("imed out") ? "cannot connect: timed out" : "cannot connect: \(underlying)"
        case .serverClosedConnection, .uncleanShutdown: cause = "the server closed the connection"
        case .clientClosedConnection: cause = "the connection was closed"
        case .authMechanismRequiresPassword: cause = "the server asks for a password: set database.password_file"
        default: cause = "\(error.code)"
        }
        return StoreError(kind: .unavailable, message: "database \(database): \(cause)")
    }
}

/// The collector's one connection to PostgreSQL: opens it (and migrates the schema) when needed, commits batches,
/// and reads what receipts cover. An actor: its queries run one at a time on the connection, on PostgresNIO's
/// event loop, never blocking a thread of the cooperative pool.
public actor EventStore {
    public private(set) var settings: CollectorConfiguration.Database
    let logger: Logger
    private var connection: PostgresConnection?
    private var nextID = 1

    public init(settings: CollectorConfiguration.Database, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// New settings (SIGHUP): the next operation connects with them.
    public func reconfigure(_ settings: CollectorConfiguration.Database) async {
        guard settings.description != self.settings.description || settings.password != self.settings.password else {
            self.settings = settings
            return
        }
        self.settings = settings
        await disconnect()
    }

    public var isConnected: Bool { connection != nil && !(connection!.isClosed) }

    public func disconnect() async {
        if let connection { try? await connection.close() }
        connection = nil
    }

    /// The open connection, opening and migrating it first when there is none.
    func open() async throws(StoreError) -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        connection = nil
        var configuration = PostgresConnection.Configuration(host: settings.host, port: settings.port, username: settings.user,
                                                             password: settings.password, database: settings.name, tls: .disable)
        configuration.options.connectTimeout = .seconds(5)
        let opened: PostgresConnection
        do {
            opened = try await PostgresConnection.connect(configuration: configuration, id: nextID, logger: logger)
        } catch {
            throw StoreError.from(error, database: settings.description)
        }
        nextID += 1
        do {
            try await migrate(opened)
        } catch {
            try? await opened.close()
            throw error
        }
        connection = opened
        return opened
    }

    /// Creates or migrates the schema to `CollectorSchema.version`, in one transaction under an advisory lock.
    func migrate(_ connection: PostgresConnection) async throws(StoreError) {
        let logger = logger
        let database = settings.description
        do {
            try await connection.query("BEGIN", logger: logger)
            try await connection.query("SELECT pg_advisory_xact_lock(\(CollectorSchema.migrationLock))", logger: logger)
            try await connection.query("CREATE TABLE IF NOT EXISTS accessgw_schema (version integer NOT NULL)", logger: logger)
            var version = 0
            for try await (found) in try await connection.query("SELECT max(version) FROM accessgw_schema", logger: logger).decode(Int?.self) {
                version = found ?? 0
            }
            guard let pending = CollectorSchema.pending(from: version) else {
                try await connection.query("ROLLBACK", logger: logger)
                throw StoreError(kind: .schemaTooNew, message: """
                    database \(database): schema version \(version) is newer than this collector's \(CollectorSchema.version); \
                    upgrade accessgw
                    """)
            }
            for migration in pending {
                for statement in migration.statements { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                logger.notice("database schema migrated", metadata: [
                    "db.schema_version": "\(migration.version)", "db.migration": "\(migration.summary)", "db": "\(database)",
                ])
            }
            try await connection.query("DELETE FROM accessgw_schema", logger: logger)
            try await connection.query("INSERT INTO accessgw_schema (version) VALUES (\(max(version, CollectorSchema.version)))", logger: logger)
            try await connection.query("COMMIT", logger: logger)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.from(error, database: database)
        }
    }

    /// The schema version of the database (0 when it has none yet).
    public func schemaVersion() async throws(StoreError) -> Int {
        let connection = try await open()
        do {
            var version = 0
            for try await found in try await connection.query("SELECT max(version) FROM accessgw_schema", logger: logger).decode(Int?.self) {
                version = found ?? 0
            }
            return version
        } catch {
            throw StoreError.from(error, database: settings.description)
        }
    }

    /// Commits `plan` in one transaction; a refusal of the data makes it retry event by event, each in its own
    /// transaction, so that one event the server cannot take does not hold back the others.
    public func write(_ plan: BatchPlan) async throws(StoreError) -> BatchOutcome {
        let connection = try await open()
        do {
            return try await transaction(connection) { try await Self.apply(plan, on: connection, logger: $0) }
        } catch let error as StoreError where error.kind == .refused {
            logger.debug("batch refused, trying its events one by one", metadata: ["error": "\(error)"])
            return try await writeOneByOne(plan, connection: connection)
        } catch let error as StoreError {
            if error.kind == .unavailable { await disconnect() }
            throw error
        } catch {
            await disconnect()
            throw StoreError(kind: .unavailable, message: "database \(settings.description): \(error)")
        }
    }

    private func writeOneByOne(_ plan: BatchPlan, connection: PostgresConnection) async throws(StoreError) -> BatchOutcome {
        var total = BatchOutcome()
        total.conflicts = plan.conflicts
        total.duplicates = plan.duplicates
        var singles: [BatchPlan] = plan.events.map { event in
            var single = BatchPlan([])
            single.events = [event]
            return single
        }
        var rest = BatchPlan([])
        rest.states = plan.states
        rest.statuses = plan.statuses
        singles.append(rest)
        for single in singles {
            do {
                let outcome = try await transaction(connection) { try await Self.apply(single, on: connection, logger: $0) }
                total.stored += outcome.stored
                total.duplicates += outcome.duplicates
                total.conflicts += outcome.conflicts
                total.erased += outcome.erased
                total.touched.formUnion(outcome.touched)
            } catch let error as StoreError where error.kind == .refused {
                total.refused.append((single.events.first?.id ?? "(states and statuses)", error.message))
            } catch let error as StoreError {
                await disconnect()
                throw error
            } catch {
                await disconnect()
                throw StoreError(kind: .unavailable, message: "database \(settings.description): \(error)")
            }
        }
        return total
    }

    /// BEGIN, `body`, COMMIT; ROLLBACK when `body` throws (a lost connection rolls back by itself).
    private func transaction<T: Sendable>(_ connection: PostgresConnection,
                                          _ body: (Logger) async throws -> T) async throws -> T {
        let database = settings.description
        do {
            try await connection.query("BEGIN", logger: logger)
            let value = try await body(logger)
            try await connection.query("COMMIT", logger: logger)
            return value
        } catch {
            let failure = error as? StoreError ?? StoreError.from(error, database: database)
            if failure.kind == .refused { _ = try? await connection.query("ROLLBACK", logger: logger) }
            throw failure
        }
    }
}
