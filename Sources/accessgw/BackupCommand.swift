import ArgumentParser
import Gateway
import Journal

/// `accessgw backup FILE`: a consistent copy of the journal (SQLite online backup), safe while the daemon runs.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the journal consistently (WAL included) into FILE while the daemon keeps running."
    )

    @OptionGroup var journalOptions: JournalOptions
    @Argument(help: "The new backup file (must not exist).") var file: String

    func run() throws {
        let source = try journalOptions.existingPath()
        do {
            let outcome = try JournalBackup.run(source: source, destination: file)
            print("\(file): \(outcome.events) events (\(outcome.pending) unpublished), \(StatusReport.size(outcome.bytes)), from \(source)")
        } catch {
            throw CommandFailure("backup failed: \(error)")
        }
    }
}
