/// When a device's state block is read next: on a fixed phase, `every` after the time it was due rather than after
/// the turn that read it (SPEC 8, "RS-485 event latency").
///
/// Measured on an idle RS-485 line (Benchmarks/README.md, issue 24): scheduled from the turn, every device's state
/// read fell due again within the same header round, one round in two carried all of them (8 devices at 9600 baud:
/// a 780 ms round, then a 390 ms one) and an event waited for the long one. On a fixed phase the reads keep the
/// spread they started with, so each header round carries its share of them and none is stretched by all.
enum StateSchedule {
    /// The next due time after a read that was due at `due`, at `now`, every `every` milliseconds. A device that fell
    /// a whole period behind (offline, a long drain) starts a fresh phase from now instead of catching up.
    static func next(after due: Int64, now: Int64, every: Int64) -> Int64 {
        let next = due + every
        return next > now ? next : now + every
    }

    /// On an RS-485 line the state reads of all devices share one pace, the sum of their rates: one read every this
    /// many milliseconds (for 8 devices at `state_poll: 1s`, 125 ms), so each header round carries its even share of
    /// them (SPEC 8's bound: a round "with the state reads that fall into it") instead of all at once. Nil without
    /// state blocks read beside an event log.
    static func paceMillis(statePolls: [Int64]) -> Int64? {
        let rate = statePolls.filter { $0 > 0 }.reduce(0.0) { $0 + 1 / Double($1) }
        return rate > 0 ? max(1, Int64((1 / rate).rounded(.down))) : nil
    }

    /// Whether a due state read may go in this turn: at or after the line's next state slot.
    static func slotOpen(now: Int64, nextSlot: Int64) -> Bool { now >= nextSlot }

    /// The line's next state slot after a state read at `now`: one pace later, whatever was missed before. Letting
    /// missed slots be made up (even one) brought back the bursts the pace is there to prevent: on a line whose turns
    /// are always due, a state turn (97 ms at 9600 baud) is shorter than the pace (125 ms), so a debt is repaid one
    /// read per turn, all 8 devices in a row (measured with `bench --rtu --idle --trace`). On such a line the reads
    /// then come every other turn, a little under the configured rate, as they did before the pace.
    static func nextSlot(now: Int64, pace: Int64) -> Int64 { now + pace }
}
