import ArgumentParser
import Collector
import Gateway
import Logging
import ServiceLifecycle

/// `accessgw collect`: the centre's collector (SPEC 4.4): events of every compound into PostgreSQL, receipts back.
struct CollectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collect",
        abstract: "Store every compound's events in PostgreSQL and publish signed receipts of what is stored (the centre).",
        discussion: """
        --check validates the configuration and the files it names (password and key files), prints a summary and \
        exits 0, or prints every problem with file:line and exits 78; `accessgw check --config central.yaml` does \
        the same for a file with a collector section.
        """
    )

    @Option(help: "Collector configuration file.") var config = CollectorConfiguration.defaultPath
    @Flag(help: "Validate the configuration and exit.") var check = false
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel: Logger.Level = .info

    /// `--check`: validates the file and prints its summary; a bad file exits 78 with every problem.
    static func check(path: String) throws {
        let loaded: CollectorConfiguration
        do { loaded = try CollectorConfiguration.load(path: path) } catch { throw ConfigFailure(error.description) }
        print("\(path): ok: \(loaded.summary)")
    }

    func run() async throws {
        if check { return try Self.check(path: config) }
        let loaded: CollectorConfiguration
        do { loaded = try CollectorConfiguration.load(path: config) } catch { throw ConfigFailure(error.description) }
        let logOutput = GatewayLogHandler.bootstrap(level: logLevel)
        defer { logOutput.flush() }
        let logger = Logger(label: "accessgw.collect")
        let endpoint = MetricsEndpoint.bootstrap()
        let notifier = SystemdNotifier()
        let collector: CollectorService
        do {
            collector = try CollectorService(configuration: loaded, logger: logger, notify: { message in
                if message == "RELOADING=1" { notifier.reloading() } else { notifier.send(message) }
            }, watchdogInterval: notifier.watchdogInterval)
        } catch {
            throw CommandFailure("cannot start: \(error)")
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: collector)]
        if let listen = loaded.metricsListen {
            services.append(.init(service: MetricsService(endpoint: endpoint, host: listen.host, port: listen.port,
                                                          health: { collector.madeProgress(within: 60) }, logger: logger)))
        }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do { try await group.run() } catch { throw CommandFailure("\(error)") }
    }
}
