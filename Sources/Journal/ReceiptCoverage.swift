/// What the centre has confirmed of one epoch (SPEC 4.3): every place `gwseq` at or below `through`, and those in
/// `ranges`. Pure: the receipt intake, the journal's counts and the re-publication all ask it, and the fuzz target
/// `receipt` calls it on whatever a parsed receipt holds.
public struct ReceiptCoverage: Sendable, Equatable {
    /// Every place up to and including this one is confirmed (0: none).
    public private(set) var through: Int64
    /// Confirmed places above `through`: ascending, disjoint, not adjacent to each other nor to `through`.
    public private(set) var ranges: [ClosedRange<Int64>]

    /// Nothing confirmed.
    public static let none = ReceiptCoverage(through: 0, ranges: [])

    /// Normalises what a receipt says: parts of ranges at or below `through` go, a range that starts right after
    /// `through` raises it, and ranges that touch are merged (the receipt parser has already refused overlaps).
    public init(through: Int64, ranges: [ClosedRange<Int64>]) {
        var through = max(0, through)
        var merged: [ClosedRange<Int64>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) where range.upperBound > through {
            let lower = max(range.lowerBound, through + 1)
            if let last = merged.last, lower <= last.upperBound &+ 1 {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            } else {
                merged.append(lower...range.upperBound)
            }
        }
        while let first = merged.first, first.lowerBound == through + 1 {
            through = first.upperBound
            merged.removeFirst()
        }
        self.through = through
        self.ranges = merged
    }

    /// Whether `gwseq` is confirmed.
    public func covers(_ gwseq: Int64) -> Bool {
        if gwseq <= through { return true }
        var low = 0, high = ranges.count
        while low < high {
            let middle = (low + high) / 2
            if ranges[middle].upperBound < gwseq { low = middle + 1 } else { high = middle }
        }
        return low < ranges.count && ranges[low].contains(gwseq)
    }

    /// The places of `span` this coverage does not confirm, ascending: at most `ranges.count + 1` runs. Places the
    /// journal no longer holds (deleted by retention, erased) may fall in them; the caller looks only at rows it has.
    public func holes(in span: ClosedRange<Int64>) -> [ClosedRange<Int64>] {
        var holes: [ClosedRange<Int64>] = []
        var next = max(span.lowerBound, through + 1)
        for range in ranges {
            guard next <= span.upperBound else { break }
            if range.upperBound < next { continue }
            if range.lowerBound > next { holes.append(next...min(range.lowerBound - 1, span.upperBound)) }
            next = range.upperBound + 1
        }
        if next <= span.upperBound { holes.append(next...span.upperBound) }
        return holes
    }

    /// Of `published` (places of events the journal holds and has published, ascending), those not confirmed.
    public func unconfirmed(_ published: [Int64]) -> [Int64] {
        published.filter { !covers($0) }
    }
}
