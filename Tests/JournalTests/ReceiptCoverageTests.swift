import Journal
import Testing

@Suite("Receipt coverage (SPEC 4.3), pure")
struct ReceiptCoverageTests {
    @Test func throughAndRangesAreConfirmedAndTheHolesAreNot() {
        let coverage = ReceiptCoverage(through: 10, ranges: [15...20, 30...30])
        #expect((1...10).allSatisfy(coverage.covers))
        #expect(!coverage.covers(11) && !coverage.covers(14) && coverage.covers(15) && coverage.covers(20))
        #expect(!coverage.covers(21) && coverage.covers(30) && !coverage.covers(31))
        #expect(coverage.holes(in: 1...40) == [11...14, 21...29, 31...40])
        #expect(coverage.holes(in: 16...25) == [21...25])
        #expect(coverage.holes(in: 1...10) == [])
    }

    @Test func rangesTouchingThroughOrEachOtherAreFolded() {
        let coverage = ReceiptCoverage(through: 10, ranges: [3...8, 11...12, 13...15, 17...18])
        #expect(coverage.through == 15)
        #expect(coverage.ranges == [17...18])
        #expect(ReceiptCoverage(through: 0, ranges: []).holes(in: 1...3) == [1...3])
    }

    @Test func rowsRetentionDeletedOrForgetErasedAreNeitherConfirmedNorCounted() {
        // The journal still holds places 1-3 (old ones deleted by retention), 8 and 9 erased by forget.
        let held: [Int64] = [5, 6, 7, 10, 11, 12, 13]
        let coverage = ReceiptCoverage(through: 6, ranges: [11...11])
        #expect(coverage.unconfirmed(held) == [7, 10, 12, 13])
        // A hole over places the journal no longer holds has nothing to send again.
        #expect(ReceiptCoverage(through: 7, ranges: [10...13]).unconfirmed(held) == [])
    }

    @Test func aReceiptOfTheOtherEpochConfirmsNothingHere() {
        // The intake keeps `.none` for a receipt of another epoch: every place is a hole.
        let coverage = ReceiptCoverage.none
        #expect(coverage.unconfirmed([1, 2, 3]) == [1, 2, 3])
        #expect(coverage.holes(in: 1...3) == [1...3])
    }

    @Test func tenThousandPlacesWithHolesAreCoveredExactly() {
        var ranges: [ClosedRange<Int64>] = []
        var first: Int64 = 102
        while ranges.count < 64 {
            ranges.append(first...(first + 97))
            first += 150
        }
        let coverage = ReceiptCoverage(through: 100, ranges: ranges)
        let places = Array(Int64(1)...10_000)
        let expected = places.filter { place in place <= 100 || ranges.contains { $0.contains(place) } }
        #expect(places.filter(coverage.covers) == expected)
        let holes = coverage.holes(in: 1...10_000)
        #expect(holes.reduce(0) { $0 + $1.count } == places.count - places.filter(coverage.covers).count)
    }
}
