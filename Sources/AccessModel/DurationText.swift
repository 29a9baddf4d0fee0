/// Parses and prints the configuration's duration strings: `200ms`, `5s`, `10m`, `2h`, `7d`.
public enum DurationText {
    /// Milliseconds in `text`, or nil when it is not a duration.
    public static func milliseconds(_ text: String) -> Int64? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            guard !number.isEmpty, number.allSatisfy(\.isASCII), let value = Int64(number), value >= 0 else { continue }
            let (ms, overflow) = value.multipliedReportingOverflow(by: factor)
            return overflow ? nil : ms
        }
        return nil
    }

    /// The shortest exact form: 1500 → `1500ms`, 5000 → `5s`.
    public static func format(milliseconds ms: Int64) -> String {
        for (suffix, factor) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
        where ms != 0 && ms % factor == 0 {
            return "\(ms / factor)\(suffix)"
        }
        return "\(ms)ms"
    }
}

/// Parses byte sizes such as `2GiB`, `500MB`, `4096`.
public enum ByteSizeText {
    public static func bytes(_ text: String) -> Int64? {
        let units: [(String, Int64)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
            ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000), ("B", 1),
        ]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            guard let value = Int64(text.dropLast(suffix.count)), value >= 0 else { return nil }
            let (bytes, overflow) = value.multipliedReportingOverflow(by: factor)
            return overflow ? nil : bytes
        }
        return Int64(text).flatMap { $0 >= 0 ? $0 : nil }
    }
}

/// Parses event rates such as `5/s`, `300/m`, `2/h`, or a bare `5` meaning per second.
public enum RateText {
    /// Events per second in `text`, or nil when it is not a rate.
    public static func perSecond(_ text: String) -> Double? {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let count = parts.first.flatMap({ Double($0) }), count.isFinite, count >= 0 else { return nil }
        guard parts.count == 2 else { return count }
        return ["s": 1.0, "m": 60, "h": 3600][String(parts[1])].map { count / $0 }
    }
}
