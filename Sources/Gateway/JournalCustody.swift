import Foundation
import Journal
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Watches that the journal path still names the file the daemon writes. Deleted or replaced while running, the
/// journal would go on taking commits into a file that vanishes with the process, while devices are acked for
/// them. Checked by the writer before every ack and by the housekeeper every second.
///
/// The fail-safe chosen: stop before acking anything more, save everything committed, and exit non-zero so that
/// systemd (Restart=on-failure) starts again on the saved journal. Nothing is lost: what was acked is in the saved
/// copy, published or not, and what was not acked is still in the devices, read again after the restart (the
/// journal recognises what it already holds). Reopening a fresh journal in-process instead would have to swap the
/// writer's, publisher's and housekeeper's connections under load; a restart does that with code that is tested.
public final class JournalCustody: Sendable {
    let journal: Journal
    let logger: Logger
    private let stopping = Mutex(false)

    /// The exit status after saving the journal: EX_TEMPFAIL, so systemd restarts the daemon.
    public static let exitStatus: Int32 = 75

    public init(journal: Journal, logger: Logger) {
        self.journal = journal
        self.logger = logger
    }

    /// Returns when the journal file is in place; otherwise saves the journal and ends the process.
    public func check() {
        let state = journal.fileState()
        guard state != .inPlace else { return }
        stopping.withLock { _ in
            let path = journal.path
            var destination = path
            switch state {
            case .missing:
                logger.critical("journal \(path) was deleted while running: acknowledging no device until it is back; saving what it holds")
                // Its WAL and shared-memory files, if still there, belong to the deleted file: the copy holds their
                // content, and left beside the new file they would be applied to it.
                for suffix in ["-wal", "-shm"] { unlink(path + suffix) }
            case .replaced, .inPlace:
                destination = "\(path).saved-\(Int64(Date().timeIntervalSince1970 * 1000))"
                logger.critical("journal \(path) was replaced by another file while running: acknowledging no device; saving what this daemon journalled as \(destination), leaving the new file alone")
            }
            do {
                try journal.copy(to: destination)
                logger.critical("journal saved to \(destination); exiting with status \(Self.exitStatus) so the service restarts on it (the devices keep every event not acknowledged)")
            } catch {
                logger.critical("journal could not be saved to \(destination): \(error); exiting with status \(Self.exitStatus) without acknowledging anything more")
            }
            // _exit: no handler may run on and ack a device, and nothing more is written anywhere.
            _exit(Self.exitStatus)
        }
    }
}
