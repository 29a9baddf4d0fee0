import AccessModel
import Logging
import PostgresNIO

extension EventStore {
    /// The statements of one batch, inside the caller's transaction. Every column travels as a text array
    /// (`unnest`), NULL as the empty text: one round trip per statement whatever the batch's size.
    static func apply(_ plan: BatchPlan, on connection: PostgresConnection, logger: Logger) async throws -> BatchOutcome {
        var outcome = BatchOutcome()
        outcome.duplicates = plan.duplicates
        outcome.conflicts = plan.conflicts
        let events = plan.events
        if !events.isEmpty {
            let ids = events.map(\.id), sources = events.map(\.source), types = events.map(\.type)
            let times = events.map { $0.time?.rfc3339 ?? "" }, sites = events.map(\.site)
            let gateways = events.map { $0.gateway ?? "" }, devices = events.map(\.device)
            let epochs = events.map { $0.gwepoch ?? "" }, places = events.map { $0.gwseq.map(String.init) ?? "" }
            let bodies = events.map(\.event.serialized)
            var inserted = Set<String>()
            let insert: PostgresQuery = """
                INSERT INTO events (id, source, type, time, site, gateway, device, gwepoch, gwseq, event)
                SELECT n.id, n.source, n.type, NULLIF(n.time, '')::timestamptz, n.site, NULLIF(n.gateway, ''), n.device,
                       NULLIF(n.gwepoch, ''), NULLIF(n.gwseq, '')::bigint, n.event::jsonb
                FROM unnest(\(ids)::text[], \(sources)::text[], \(types)::text[], \(times)::text[], \(sites)::text[],
                            \(gateways)::text[], \(devices)::text[], \(epochs)::text[], \(places)::text[], \(bodies)::text[])
                     AS n(id, source, type, time, site, gateway, device, gwepoch, gwseq, event)
                WHERE NOT EXISTS (SELECT 1 FROM erased_events x WHERE x.id = n.id)
                ON CONFLICT (id) DO NOTHING
                RETURNING id
                """
            for try await id in try await connection.query(insert, logger: logger).decode(String.self) { inserted.insert(id) }
            outcome.stored = inserted.count
            let others = events.indices.filter { !inserted.contains(events[$0].id) }
            if !others.isEmpty {
                let otherIDs = others.map { ids[$0] }, otherBodies = others.map { bodies[$0] }
                let compare: PostgresQuery = """
                    SELECT e.id, e.source, e.event = n.event::jsonb
                    FROM events e JOIN unnest(\(otherIDs)::text[], \(otherBodies)::text[]) AS n(id, event) ON e.id = n.id
                    """
                var existing: [String: (source: String, same: Bool)] = [:]
                for try await (id, source, same) in try await connection.query(compare, logger: logger).decode((String, String, Bool).self) {
                    existing[id] = (source, same)
                }
                for index in others {
                    let row = events[index]
                    if let found = existing[row.id], !found.same {
                        outcome.conflicts.append(.init(id: row.id, firstSource: found.source, secondSource: row.source, secondEvent: row.event))
                    } else {
                        // The same payload, or an id erased before: nothing changes.
                        outcome.duplicates += 1
                    }
                }
            }
            // A copy already stored still confirms its place: its gateway is waiting for a receipt.
            for row in events { if let key = row.receiptKey { outcome.touched.insert(key) } }
        }
        if !outcome.conflicts.isEmpty {
            let conflicts = outcome.conflicts
            let full: PostgresQuery = """
                INSERT INTO conflicts (id, first_source, second_source, second_event)
                SELECT n.id, n.a, n.b, n.e::jsonb FROM unnest(\(conflicts.map(\.id))::text[], \(conflicts.map(\.firstSource))::text[],
                       \(conflicts.map(\.secondSource))::text[], \(conflicts.map(\.secondEvent.serialized))::text[]) AS n(id, a, b, e)
                """
            try await connection.query(full, logger: logger)
        }
        let erasures = events.filter { $0.erases != nil }
        if !erasures.isEmpty {
            let targets = erasures.map { $0.erases! }, by = erasures.map(\.id)
            try await connection.query("""
                INSERT INTO erased_events (id, erased_by) SELECT * FROM unnest(\(targets)::text[], \(by)::text[])
                ON CONFLICT (id) DO NOTHING
                """, logger: logger)
            for try await count in try await connection.query("""
                WITH gone AS (DELETE FROM events WHERE id = ANY(\(targets)::text[]) RETURNING 1) SELECT count(*) FROM gone
                """, logger: logger).decode(Int64.self) {
                outcome.erased = Int(count)
            }
        }
        let expiries = events.filter { $0.expired != nil && $0.receiptKey != nil }
        if !expiries.isEmpty {
            try await connection.query("""
                INSERT INTO expired_places (site, gateway, gwepoch, from_gwseq, to_gwseq, event_id)
                SELECT n.s, n.g, n.e, n.f::bigint, n.t::bigint, n.id
                FROM unnest(\(expiries.map(\.site))::text[], \(expiries.map { $0.gateway! })::text[], \(expiries.map { $0.gwepoch! })::text[],
                            \(expiries.map { String($0.expired!.lowerBound) })::text[], \(expiries.map { String($0.expired!.upperBound) })::text[],
                            \(expiries.map(\.id))::text[]) AS n(s, g, e, f, t, id)
                ON CONFLICT DO NOTHING
                """, logger: logger)
        }
        if !plan.states.isEmpty {
            let states = plan.states
            try await connection.query("""
                INSERT INTO device_state (site, device, state, updated_at)
                SELECT n.s, n.d, n.p::jsonb, now() FROM unnest(\(states.map(\.site))::text[], \(states.map(\.device))::text[],
                                                            \(states.map(\.payload.serialized))::text[]) AS n(s, d, p)
                ON CONFLICT (site, device) DO UPDATE SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at
                """, logger: logger)
        }
        if !plan.statuses.isEmpty {
            let statuses = plan.statuses
            try await connection.query("""
                INSERT INTO gateway_status (site, gateway, state, status, updated_at)
                SELECT n.s, n.g, NULLIF(n.st, ''), n.p::jsonb, now()
                FROM unnest(\(statuses.map(\.site))::text[], \(statuses.map(\.gateway))::text[], \(statuses.map { $0.state ?? "" })::text[],
                            \(statuses.map(\.payload.serialized))::text[]) AS n(s, g, st, p)
                ON CONFLICT (site, gateway) DO UPDATE SET state = EXCLUDED.state, status = EXCLUDED.status, updated_at = EXCLUDED.updated_at
                """, logger: logger)
        }
        return outcome
    }
}
