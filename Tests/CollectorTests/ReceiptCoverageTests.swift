import Collector
import Testing

@Suite struct ReceiptCoverageTests {
    @Test func contiguousPlacesFromOneAreAllThrough() {
        #expect(ReceiptCoverage.compute(through: 0, filled: [1...5, 6...9]) == ReceiptCoverage(through: 9))
    }

    @Test func aGapStopsThroughAndLaterRunsBecomeRanges() {
        let coverage = ReceiptCoverage.compute(through: 0, filled: [1...3, 5...5, 7...9])
        #expect(coverage == ReceiptCoverage(through: 3, ranges: [5...5, 7...9]))
        #expect(coverage.covers(3) && !coverage.covers(4) && coverage.covers(8) && !coverage.covers(10))
    }

    @Test func nothingFilledAtOneMeansThroughZero() {
        #expect(ReceiptCoverage.compute(through: 0, filled: [2...4]) == ReceiptCoverage(through: 0, ranges: [2...4]))
        #expect(ReceiptCoverage.compute(through: 0, filled: []) == ReceiptCoverage(through: 0))
    }

    @Test func runsInAnyOrderOverlappingOrTouchingAreMerged() {
        let coverage = ReceiptCoverage.compute(through: 0, filled: [10...12, 1...2, 3...4, 11...15, 20...21, 16...16])
        #expect(coverage == ReceiptCoverage(through: 4, ranges: [10...16, 20...21]))
    }

    @Test func aKnownThroughIsExtendedByTheRunAfterIt() {
        #expect(ReceiptCoverage.compute(through: 100, filled: [101...150, 160...170]) == ReceiptCoverage(through: 150, ranges: [160...170]))
        // Runs at or below `through` change nothing; a run straddling it extends it.
        #expect(ReceiptCoverage.compute(through: 100, filled: [5...50, 90...120]) == ReceiptCoverage(through: 120))
    }

    @Test func anExpiredRangeFillsAGap() {
        // Events 1-10 and 21-30 stored, 11-20 reported gone (gateway.events_unconfirmed_expired).
        #expect(ReceiptCoverage.compute(through: 0, filled: [1...10, 21...30, 11...20]) == ReceiptCoverage(through: 30))
    }

    @Test func atMost64RangesTheLowestFirst() {
        let runs = (1...100).map { Int64($0 * 3)...Int64($0 * 3) }
        let coverage = ReceiptCoverage.compute(through: 0, filled: runs)
        #expect(coverage.through == 0)
        #expect(coverage.ranges.count == ReceiptCoverage.maxRanges)
        #expect(coverage.ranges.first == 3...3 && coverage.ranges.last == 192...192)
    }

    @Test func placesBelowOneDoNotExist() {
        #expect(ReceiptCoverage.compute(through: 0, filled: [-5...0, 0...2]) == ReceiptCoverage(through: 2))
        #expect(ReceiptCoverage.compute(through: -3, filled: []) == ReceiptCoverage(through: 0))
    }
}
