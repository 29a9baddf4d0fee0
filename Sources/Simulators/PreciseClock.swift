#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Monotonic nanosecond time and absolute sleeps (`clock_nanosleep`, `TIMER_ABSTIME`) for line pacing.
public enum PreciseClock {
    /// CLOCK_MONOTONIC now, in nanoseconds.
    public static var now: UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Sleeps until CLOCK_MONOTONIC reaches `deadline` nanoseconds, resuming after signals.
    public static func sleep(until deadline: UInt64) {
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
    }

    /// Sleeps for `milliseconds` from now; does nothing for zero.
    public static func sleep(milliseconds: Int) {
        guard milliseconds > 0 else { return }
        sleep(until: now + UInt64(milliseconds) * 1_000_000)
    }
}
