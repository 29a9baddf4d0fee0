import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The one daemon writing a journal: an exclusive `flock` on `<journal>.lock`, holding the owner's pid, for as long
/// as this value lives. A second `accessgw run` on the same journal would fail every commit on the journal's
/// unique keys, ack nothing, and fight the first over the broker's client id; it stops at once instead, naming
/// the first. Read-only users (`tail`, `status`) take no lock.
///
/// A lock file beside the database rather than a lock on the database itself: SQLite's own locks are POSIX record
/// locks on that file, which `flock` must not be mixed with where the kernel emulates one with the other (NFS).
/// The kernel drops the lock when the process dies however it dies, so a stale file never blocks a restart.
public final class JournalLock: Sendable {
    public let path: String
    private let descriptor: Int32

    /// Takes the lock for the journal at `journalPath`, creating its directory if needed.
    public init(journalPath: String) throws(JournalLockError) {
        path = journalPath + ".lock"
        let parent = (journalPath as NSString).deletingLastPathComponent
        if !parent.isEmpty { try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) }
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw JournalLockError(journal: journalPath, detail: "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            let owner = Self.owner(fd)
            close(fd)
            if code == EWOULDBLOCK {
                throw JournalLockError(journal: journalPath, detail: "it is in use by another accessgw"
                    + (owner.map { " (pid \($0))" } ?? "") + "; stop that one first or give this one another journal",
                                       owner: owner)
            }
            throw JournalLockError(journal: journalPath, detail: "cannot lock \(path): \(String(cString: strerror(code)))")
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
        descriptor = fd
    }

    deinit {
        _ = ftruncate(descriptor, 0)
        close(descriptor)
    }

    /// The pid the owner wrote into the lock file, if it reads as one.
    static func owner(_ fd: Int32) -> Int32? {
        var bytes = [UInt8](repeating: 0, count: 32)
        let count = pread(fd, &bytes, bytes.count, 0)
        guard count > 0 else { return nil }
        let text = String(decoding: bytes[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return Int32(text)
    }
}

/// The journal could not be locked for this daemon, most often because another one holds it.
public struct JournalLockError: Error, CustomStringConvertible {
    public var journal: String
    public var detail: String
    /// The pid of the daemon holding the lock, when it could be read.
    public var owner: Int32?

    public var description: String { "journal \(journal): \(detail)" }
}
