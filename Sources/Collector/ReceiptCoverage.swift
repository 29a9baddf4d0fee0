/// What a receipt says is stored (SPEC 4.3): `through`, the highest `gwseq` with every place below it filled, and up
/// to 64 ascending inclusive ranges above it. Pure: the caller reads the filled places from the database.
public struct ReceiptCoverage: Sendable, Equatable {
    public static let maxRanges = 64

    public var through: Int64
    public var ranges: [ClosedRange<Int64>]

    public init(through: Int64, ranges: [ClosedRange<Int64>] = []) {
        self.through = through
        self.ranges = ranges
    }

    /// The coverage given `through` (every place up to it is known to be filled, 0 for none) and runs of filled
    /// places above it in any order, overlapping or touching: runs are merged, the one that starts right after
    /// `through` extends it, and the first `maxRanges` of the rest become `ranges`. Places ≤ 0 do not exist.
    public static func compute(through start: Int64, filled runs: [ClosedRange<Int64>], maxRanges: Int = maxRanges) -> ReceiptCoverage {
        var through = max(0, start)
        var merged: [ClosedRange<Int64>] = []
        for run in runs.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            let lower = max(run.lowerBound, 1)
            guard lower <= run.upperBound, run.upperBound > through else { continue }
            let clipped = max(lower, through + 1)...run.upperBound
            if let last = merged.last, clipped.lowerBound <= last.upperBound + 1 {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, clipped.upperBound)
            } else {
                merged.append(clipped)
            }
        }
        if let first = merged.first, first.lowerBound == through + 1 {
            through = first.upperBound
            merged.removeFirst()
        }
        return ReceiptCoverage(through: through, ranges: Array(merged.prefix(maxRanges)))
    }

    /// Whether a receipt with this coverage says `gwseq` is stored.
    public func covers(_ gwseq: Int64) -> Bool {
        gwseq <= through && gwseq >= 1 || ranges.contains { $0.contains(gwseq) }
    }
}
