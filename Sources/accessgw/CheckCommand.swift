import ArgumentParser
import Gateway

/// `accessgw check`: validate the configuration and the profiles it names, like `nginx -t`.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate the configuration and its profiles; print the device table (exit 78 on errors)."
    )

    @Option(help: "Configuration file.") var config = GatewayConfiguration.defaultPath

    func run() throws {
        let loaded: GatewayConfiguration
        do { loaded = try GatewayConfiguration.load(path: config) } catch { throw ConfigFailure(error.description) }
        print("\(config): ok: \(loaded.summary)")
        print(loaded.deviceTable)
    }
}
