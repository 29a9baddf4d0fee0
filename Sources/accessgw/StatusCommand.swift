import ArgumentParser
import AccessModel
import Gateway

/// `accessgw status`: devices, broker and journal at a glance, from the journal database.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Per-device table (online, last poll, last event, errors, pending) and the gateway line.",
        discussion: "Exit status: 0 the daemon runs, every device is online and the broker connected; 1 something is down; 2 the daemon is not running; 77 permission denied (this user may not read the configuration or the journal)."
    )

    @OptionGroup var journalOptions: JournalOptions
    @Flag(help: "Machine-readable JSON.") var json = false

    func run() throws {
        let report: StatusReport
        do { report = try StatusReport(reader: try journalOptions.openReader()) } catch let error as CommandFailure {
            throw error
        } catch let error as PermissionFailure {
            throw error
        } catch {
            throw CommandFailure("cannot read status: \(error)")
        }
        print(json ? TerminalText.jsonEscaped(report.json) : report.rendered)
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}
