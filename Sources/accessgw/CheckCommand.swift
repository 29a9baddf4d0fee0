import ArgumentParser
import Collector
import Foundation
import Gateway

/// `accessgw check`: validate the configuration and the profiles it names, like `nginx -t`; `--online` also looks
/// outside the file.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate the configuration and its profiles; print the device table (exit 78 on errors).",
        discussion: """
        --online also checks what the file cannot tell: serial devices exist and the service user may open them, \
        secret files are readable by the service user, the broker resolves and accepts the credentials, and each \
        device answers with the kind its profile expects (exit 1 when one of these fails). Probing shares RS-485 \
        lines with a running daemon: run it while the daemon is stopped.
        """
    )

    @Option(help: "Configuration file.") var config = GatewayConfiguration.defaultPath
    @Flag(help: "Also check devices, broker, serial ports and secrets as the service user.") var online = false
    @Option(help: "The service user for --online's permission checks (default: accessgw if it exists, else you).")
    var user: String?

    func run() async throws {
        if CollectorConfiguration.isCollectorFile(path: config) {
            guard !online else { throw ValidationError("--online checks a gateway's configuration; \(config) is a collector's") }
            return try CollectCommand.check(path: config)
        }
        let loaded: GatewayConfiguration
        do { loaded = try GatewayConfiguration.load(path: config) } catch { throw ConfigFailure(error.description) }
        print("\(config): ok: \(loaded.summary)")
        print(loaded.deviceTable)
        for warning in loaded.warnings { print("warning: \(warning)") }
        guard online else { return }
        let account: ServiceAccount
        if let user {
            guard let named = ServiceAccount.named(user) else { throw ValidationError("--user \(user): no such user") }
            account = named
        } else {
            account = .default
        }
        let findings = await OnlineCheck(configuration: loaded, account: account).all()
        for finding in findings where finding.subject != "bus load" { print(finding) }
        let errors = findings.filter { $0.severity == .error }.count
        guard errors == 0 else { throw CommandFailure("check --online: \(errors) problem(s) outside the file (above)") }
        print("online: ok")
    }
}
