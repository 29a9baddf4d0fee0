import Foundation

extension Process {
    /// Starts the process with SIGTERM, SIGINT and SIGHUP unblocked in it.
    ///
    /// A child inherits the signal mask of the thread that spawns it, and libdispatch's worker threads (where
    /// async code runs) block these signals: spawned from one of them, a broker or `mosquitto_sub` would never
    /// see the SIGTERM that is meant to stop it.
    public func runWithTerminationSignalsUnblocked() throws {
        var signals = sigset_t()
        var previous = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_UNBLOCK, &signals, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try run()
    }
}
