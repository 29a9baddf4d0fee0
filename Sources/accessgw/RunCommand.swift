import ArgumentParser
import Gateway
import Logging
import ServiceLifecycle

/// `accessgw run`: the daemon. Logs to stderr (journald captures it).
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the gateway daemon: poll devices, journal events, publish them to the broker."
    )

    @Option(help: "Configuration file.") var config = GatewayConfiguration.defaultPath
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel: Logger.Level = .info
    @Flag(help: """
        Poll and publish, but write nothing to the devices: no ack_seq, no clock, no commands. For trying accessgw \
        beside a vendor platform that drains the devices' logs; every event carries read_only: true.
        """)
    var readOnly = false

    func run() async throws {
        var loaded: GatewayConfiguration
        do { loaded = try GatewayConfiguration.load(path: config) } catch { throw ConfigFailure(error.description) }
        let logOutput = GatewayLogHandler.bootstrap(level: logLevel)
        defer { logOutput.flush() }  // the repeats counted since the last summary are said before exit
        let logger = Logger(label: "accessgw")
        if readOnly {
            loaded.makeReadOnly()
            logger.notice("""
                read-only: polling and publishing without writing ack_seq, clocks or commands; each device's log is \
                drained by another reader, so this gateway sees only what its window shows before that reader acks it
                """)
            if loaded.commands.enabled { logger.notice("read-only: commands are off although the configuration enables them") }
        }
        let metrics = MetricsEndpoint.bootstrap()
        let runtime: GatewayRuntime
        do { runtime = try GatewayRuntime(configuration: loaded, logger: logger) } catch {
            throw CommandFailure("cannot start: \(error)")
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: GatewayService(runtime: runtime, logger: logger)),
            .init(service: ControlService(runtime: runtime, logger: logger)),
        ]
        if let listen = loaded.metricsListen {
            services.append(.init(service: MetricsService(endpoint: metrics, host: listen.host, port: listen.port,
                                                          health: { runtime.madeProgress(within: 15_000) }, logger: logger)))
        }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do { try await group.run() } catch { throw CommandFailure("\(error)") }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
