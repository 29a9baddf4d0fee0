import CTimex
#if canImport(Glibc)
import Glibc
#endif

/// Whether the kernel considers the host clock synchronised (NTP, chrony, timesyncd), read with `adjtimex` in
/// read-only mode (modes 0): `STA_UNSYNC` in the status, or `TIME_ERROR` returned, means it is not. A box without
/// a real-time clock boots with a stale clock, which must not be written into every controller.
public enum HostClock {
    public enum Status: Sendable, Equatable {
        case synchronised
        case unsynchronised
        /// `adjtimex` itself failed (a seccomp filter such as systemd's ProtectClock= denies even reading): errno.
        case unknown(Int32)
    }

    public static func status() -> Status {
        var state = timex()
        state.modes = 0
        let result = adjtimex(&state)
        if result == -1 { return .unknown(errno) }
        return result == TIME_ERROR || state.status & STA_UNSYNC != 0 ? .unsynchronised : .synchronised
    }
}
