@testable import BusPolling
import Testing

/// Issue 24: state reads keep their phase, so they do not all fall into one header round.
@Suite("state block schedule")
struct StateScheduleTests {
    @Test func keepsItsPhaseWhenReadLate() {
        // Due at 1000, read at 1180 (the device's turn came 180 ms later): due again at 2000, not 2180.
        #expect(StateSchedule.next(after: 1000, now: 1180, every: 1000) == 2000)
        #expect(StateSchedule.next(after: 2000, now: 2000, every: 1000) == 3000)
    }

    @Test func startsAFreshPhaseAfterFallingAPeriodBehind() {
        // The first read (due 0) and a device back after an outage: a period from now, no burst of catch-up reads.
        #expect(StateSchedule.next(after: 0, now: 50_000, every: 1000) == 51_000)
        #expect(StateSchedule.next(after: 1000, now: 2000, every: 1000) == 3000)
    }

    @Test func pacedReadsSpreadOverTheRounds() {
        // 8 devices all due at once, one device's turn every 50 ms (header rounds of 400 ms), state_poll 1 s: the line's
        // pace lets one state read through at most every 125 ms (every third 50 ms turn here), so no round carries more
        // than 3 and 10 s carry about 66.
        let pace = StateSchedule.paceMillis(statePolls: Array(repeating: 1000, count: 8))!
        var due = [Int64](repeating: 0, count: 8)
        var slot: Int64 = 0
        var reads: [Int64] = []
        for turn in 0..<200 {
            let now = Int64(turn * 50), device = turn % 8
            guard now >= due[device], StateSchedule.slotOpen(now: now, nextSlot: slot) else { continue }
            due[device] = StateSchedule.next(after: due[device], now: now, every: 1000)
            slot = StateSchedule.nextSlot(now: now, pace: pace)
            reads.append(now)
        }
        let perRound = (0..<25).map { round in reads.filter { $0 / 400 == round }.count }
        #expect(perRound.allSatisfy { $0 <= 3 }, "\(perRound)")
        #expect((60...70).contains(reads.count), "\(reads.count) state reads in 10 s")
    }

    @Test func theLineReadsStateBlocksAtTheSumOfTheirRates() {
        #expect(StateSchedule.paceMillis(statePolls: Array(repeating: 1000, count: 8)) == 125)
        #expect(StateSchedule.paceMillis(statePolls: [1000, 30_000]) == 967)
        #expect(StateSchedule.paceMillis(statePolls: []) == nil)
        #expect(StateSchedule.slotOpen(now: 125, nextSlot: 125))
        #expect(!StateSchedule.slotOpen(now: 124, nextSlot: 125))
        // One pace after the read: a long busy spell owes nothing, so no burst follows it.
        #expect(StateSchedule.nextSlot(now: 1010, pace: 125) == 1135)
        #expect(StateSchedule.nextSlot(now: 5000, pace: 125) == 5125)
    }
}
