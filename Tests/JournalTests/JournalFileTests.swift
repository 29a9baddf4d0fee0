import AccessModel
import Foundation
import Journal
import Testing

/// Issue 7 findings 3 and 6: one daemon per journal, and a journal file deleted or replaced while open is noticed
/// and its content saved, not lost with the process.
@Suite struct JournalFileTests {
    @Test func aSecondLockOnTheSameJournalIsRefusedNamingTheHolder() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        var first: JournalLock? = try JournalLock(journalPath: temp.path)
        #expect(try String(contentsOfFile: temp.path + ".lock", encoding: .utf8) == "\(getpid())\n")
        do {
            _ = try JournalLock(journalPath: temp.path)
            Issue.record("a second lock was granted")
        } catch {
            #expect(error.owner == getpid())
            #expect(error.description == "journal \(temp.path): it is in use by another accessgw (pid \(getpid())); stop that one first or give this one another journal")
        }
        withExtendedLifetime(first) {}
        first = nil
        #expect(throws: Never.self) { _ = try JournalLock(journalPath: temp.path) }
    }

    /// Issue 19 item 15: `accessgw backup` wrote its copy 0644, a copy of residents' data anyone on the box could read;
    /// the journal is 0640, and so is the copy, whatever the umask.
    @Test func aBackupIsAsPrivateAsTheJournal() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        _ = try journal.append([deviceEntry("door-3e", seq: 1)])
        let backup = temp.directory.appendingPathComponent("backup.db").path
        let mask = umask(0o022)
        defer { umask(mask) }
        _ = try JournalBackup.run(source: temp.path, destination: backup)
        var info = stat()
        #expect(stat(backup, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o640, "the copy is \(String(info.st_mode & 0o777, radix: 8))")
        withExtendedLifetime(journal) {}
    }

    @Test func aDeletedJournalIsNoticedAndItsContentCopiedOut() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        _ = try journal.append([deviceEntry("door-3e", seq: 1), deviceEntry("door-3e", seq: 2)])
        #expect(journal.fileState() == .inPlace)
        for suffix in ["", "-wal", "-shm"] { unlink(temp.path + suffix) }
        #expect(journal.fileState() == .missing)
        // SQLite in WAL mode goes on committing into the unlinked file.
        _ = try journal.append([deviceEntry("door-3e", seq: 3)])
        try journal.copy(to: temp.path)
        let saved = try temp.open()
        #expect(try saved.unpublished(limit: 10).compactMap(\.seq) == [1, 2, 3])
        #expect(saved.epoch == journal.epoch)
    }

    @Test func aReplacedJournalIsTold() throws {
        let temp = try TemporaryJournal()
        defer { temp.remove() }
        let journal = try temp.open()
        try FileManager.default.moveItem(atPath: temp.path, toPath: temp.path + ".old")
        FileManager.default.createFile(atPath: temp.path, contents: Data())
        #expect(journal.fileState() == .replaced)
    }
}
