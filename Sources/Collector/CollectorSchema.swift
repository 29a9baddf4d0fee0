/// The collector's PostgreSQL schema, created and migrated by the collector itself (SPEC 4.4): each migration is
/// the SQL that takes the schema from the version before it to its own, applied once, in one transaction, under an
/// advisory lock so that collectors starting together do not race. The version lives in `accessgw_schema`.
public enum CollectorSchema {
    /// `pg_advisory_xact_lock` key of the migration ("accessgw" in ASCII, truncated to 63 bits).
    static let migrationLock: Int64 = 0x6163_6365_7373_6777

    public struct Migration: Sendable {
        public var version: Int
        public var summary: String
        public var statements: [String]
    }

    /// The current version: the last migration's.
    public static var version: Int { migrations.last!.version }

    public static let migrations: [Migration] = [
        Migration(version: 1, summary: "events, latest device state, gateway status", statements: [
            """
            CREATE TABLE events (
                id text PRIMARY KEY,
                source text NOT NULL,
                type text NOT NULL,
                time timestamptz,
                site text NOT NULL,
                gateway text,
                device text NOT NULL,
                gwepoch text,
                gwseq bigint,
                event jsonb NOT NULL,
                stored_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX events_site_device_time ON events (site, device, time)",
            """
            CREATE TABLE device_state (
                site text NOT NULL, device text NOT NULL, state jsonb NOT NULL, updated_at timestamptz NOT NULL,
                PRIMARY KEY (site, device)
            )
            """,
            """
            CREATE TABLE gateway_status (
                site text NOT NULL, gateway text NOT NULL, state text, status jsonb NOT NULL, updated_at timestamptz NOT NULL,
                PRIMARY KEY (site, gateway)
            )
            """,
        ]),
        Migration(version: 2, summary: "receipts: places per gateway epoch, erasures, expired places, conflicts", statements: [
            "CREATE INDEX events_place ON events (site, gateway, gwepoch, gwseq) WHERE gwseq IS NOT NULL",
            // An erased event's id stays here, so a late copy of it (a broker's queue, a replay) is not stored again.
            """
            CREATE TABLE erased_events (
                id text PRIMARY KEY, erased_by text NOT NULL, erased_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            // Places a gateway deleted unconfirmed (gateway.events_unconfirmed_expired): filled for good.
            """
            CREATE TABLE expired_places (
                site text NOT NULL, gateway text NOT NULL, gwepoch text NOT NULL, from_gwseq bigint NOT NULL,
                to_gwseq bigint NOT NULL, event_id text NOT NULL,
                PRIMARY KEY (site, gateway, gwepoch, from_gwseq)
            )
            """,
            // The receipt last computed per gateway epoch, and when: the group-wide "one per gateway per second".
            """
            CREATE TABLE receipt_state (
                site text NOT NULL, gateway text NOT NULL, gwepoch text NOT NULL, through bigint NOT NULL DEFAULT 0,
                published_at timestamptz, PRIMARY KEY (site, gateway, gwepoch)
            )
            """,
            """
            CREATE TABLE conflicts (
                id text NOT NULL, first_source text NOT NULL, second_source text NOT NULL, second_event jsonb NOT NULL,
                seen_at timestamptz NOT NULL DEFAULT now()
            )
            """,
        ]),
    ]

    /// The migrations to apply to a database at `version` (0: empty), in order; nil when the database is newer
    /// than this collector knows (an older collector must not write into a schema it does not understand).
    public static func pending(from version: Int) -> [Migration]? {
        guard version <= self.version else { return nil }
        return migrations.filter { $0.version > version }
    }
}
