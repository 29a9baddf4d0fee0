import AccessModel
import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The `accessgw` command: the daemon and the operator's and installer's tools.
@main
struct AccessGateway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accessgw",
        abstract: "Gateway for the access hardware of residential communities: Modbus devices to MQTT, nothing lost.",
        version: BuildInfo.version,
        subcommands: [
            RunCommand.self, CheckCommand.self, TailCommand.self, StatusCommand.self, ProbeCommand.self,
            BackupCommand.self, ForgetCommand.self, SimulateCommand.self, BenchCommand.self, DemoCommand.self, KeygenCommand.self, SendCommand.self,
            CollectCommand.self,
        ]
    )

    /// Exit codes: 0 ok, 1 runtime failure, 64 usage, 77 permission denied, 78 configuration error; errors are one
    /// sentence on stderr.
    static func main() async {
        // A parent may have left signals blocked (test runners do); the daemon must see SIGTERM, SIGINT and SIGHUP.
        var all = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_UNBLOCK, &all, nil)
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as ConfigFailure {
            printError(failure.description)
            Glibc.exit(78)
        } catch let failure as CommandFailure {
            printError(failure.description)
            Glibc.exit(1)
        } catch let failure as PermissionFailure {
            printError(failure.description)
            Glibc.exit(77)
        } catch {
            exit(withError: error)
        }
    }

    static func printError(_ message: String) {
        let prefixed = message.split(separator: "\n", omittingEmptySubsequences: false).map { "accessgw: \($0)" }
        FileHandle.standardError.write(Data((prefixed.joined(separator: "\n") + "\n").utf8))
    }
}
