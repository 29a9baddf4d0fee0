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

    @Test func spreadReadsStaySpreadOverRounds() {
        // 8 devices first read 100 ms apart, then served in rounds of 600 ms: each second carries each device once,
        // and no round carries all 8.
        var due = (0..<8).map { Int64($0 * 100) }
        var perRound: [Int] = []
        for round in 1...20 {
            let end = Int64(round * 600)
            var reads = 0
            for i in due.indices where due[i] <= end {
                let turn = end - 600 + Int64(i) * 75  // the device's turn within the round
                guard turn >= due[i] else { continue }
                due[i] = StateSchedule.next(after: due[i], now: turn, every: 1000)
                reads += 1
            }
            perRound.append(reads)
        }
        #expect(perRound.dropFirst(2).allSatisfy { $0 < 8 }, "\(perRound)")
    }

    @Test func theLineReadsStateBlocksAtTheSumOfTheirRates() {
        #expect(StateSchedule.paceMillis(statePolls: Array(repeating: 1000, count: 8)) == 125)
        #expect(StateSchedule.paceMillis(statePolls: [1000, 30_000]) == 967)
        #expect(StateSchedule.paceMillis(statePolls: []) == nil)
        #expect(StateSchedule.slotOpen(now: 125, nextSlot: 125))
        #expect(!StateSchedule.slotOpen(now: 124, nextSlot: 125))
        // One pace on from the slot; after a long busy spell it owes one slot at most, not a burst.
        #expect(StateSchedule.nextSlot(after: 1000, now: 1010, pace: 125) == 1125)
        #expect(StateSchedule.nextSlot(after: 1000, now: 5000, pace: 125) == 4875)
    }
}
