#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A UTC instant with millisecond resolution, as devices and CloudEvents carry it.
public struct Timestamp: Sendable, Hashable, Comparable {
    public var millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) { self.millisecondsSinceEpoch = millisecondsSinceEpoch }

    public init(seconds: UInt32, millis: UInt16) {
        millisecondsSinceEpoch = Int64(seconds) * 1000 + Int64(min(millis, 999))
    }

    /// The gateway's wall clock now.
    public static var now: Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(millisecondsSinceEpoch: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
    }

    public var seconds: Int64 { millisecondsSinceEpoch.floorDiv(1000) }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
    }

    /// RFC 3339 in UTC with milliseconds: `2026-11-27T08:01:02.345Z`.
    public var rfc3339: String {
        let text = String(unsafeUninitializedCapacity: 24) { writeRFC3339(to: $0.baseAddress!) ?? 0 }
        return text.isEmpty ? widerRFC3339 : text
    }

    /// Appends the `rfc3339` text to a JSON sink (no character of it needs escaping).
    func writeRFC3339<Sink: JSONByteSink>(into out: inout Sink) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { text in
            if writeRFC3339(to: text.baseAddress!) != nil {
                out.append(contentsOf: UnsafeBufferPointer(text))
            } else {
                out.appendUTF8(widerRFC3339)
            }
        }
    }

    /// Writes the 24 bytes of a time in years 0...9999 (every device and gateway time) to `text`; nil for others.
    /// The calendar is computed here rather than by `gmtime_r`, which takes the C library's time zone lock: two
    /// of these per CloudEvent (days to civil date: Howard Hinnant's `civil_from_days`, proleptic Gregorian).
    private func writeRFC3339(to text: UnsafeMutablePointer<UInt8>) -> Int? {
        let seconds = self.seconds
        let ms = Int(millisecondsSinceEpoch - seconds * 1000)
        let days = seconds.floorDiv(86_400)
        let secondOfDay = Int(seconds - days * 86_400)
        let shifted = days + 719_468
        let era = shifted.floorDiv(146_097)
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        let day = Int(dayOfYear - (153 * monthFromMarch + 2) / 5 + 1)
        let month = Int(monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9)
        let year = Int(yearOfEra + era * 400 + (month <= 2 ? 1 : 0))
        guard (0...9999).contains(year) else { return nil }
        var end = 0
        func put(_ value: Int, digits: Int, then separator: UInt8) {
            var rest = value
            for position in (end..<(end + digits)).reversed() {
                text[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
            text[end + digits] = separator
            end += digits + 1
        }
        put(year, digits: 4, then: UInt8(ascii: "-"))
        put(month, digits: 2, then: UInt8(ascii: "-"))
        put(day, digits: 2, then: UInt8(ascii: "T"))
        put(secondOfDay / 3600, digits: 2, then: UInt8(ascii: ":"))
        put(secondOfDay / 60 % 60, digits: 2, then: UInt8(ascii: ":"))
        put(secondOfDay % 60, digits: 2, then: UInt8(ascii: "."))
        put(ms, digits: 3, then: UInt8(ascii: "Z"))
        return end
    }

    /// `rfc3339` for years outside 0...9999 (only a corrupt or hostile record gets there), through `gmtime_r`.
    private var widerRFC3339: String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        let ms = Int(millisecondsSinceEpoch - seconds * 1000)
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))"
            + "T\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(ms, 3))Z"
    }

    /// Parses the `rfc3339` form back (UTC, optional milliseconds).
    public init?(rfc3339 text: String) {
        let digits = text.utf8.map { $0 }
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= digits.count else { return nil }
            var n = 0
            for i in from..<(from + count) {
                let d = Int(digits[i]) - 48
                guard (0...9).contains(d) else { return nil }
                n = n * 10 + d
            }
            return n
        }
        guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
              let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2) else { return nil }
        let millis = digits.count > 20 && digits[19] == UInt8(ascii: ".") ? number(20, 3) ?? 0 : 0
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        millisecondsSinceEpoch = Int64(timegm(&parts)) * 1000 + Int64(millis)
    }
}

private func pad(_ value: Int, _ width: Int) -> String {
    let s = String(value)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}

extension Int64 {
    func floorDiv(_ d: Int64) -> Int64 {
        let q = self / d
        return (self % d != 0 && (self < 0) != (d < 0)) ? q - 1 : q
    }
}
