import Logging
import ServiceLifecycle

/// The daemon as a `Service`: starts the runtime, tells systemd it is ready, proves progress to the watchdog,
/// and on graceful shutdown (SIGTERM, SIGINT) stops without losing anything. Returning early means failure.
public struct GatewayService: Service {
    let runtime: GatewayRuntime
    let notifier: SystemdNotifier
    let logger: Logger

    public init(runtime: GatewayRuntime, notifier: SystemdNotifier = SystemdNotifier(), logger: Logger) {
        self.runtime = runtime
        self.notifier = notifier
        self.logger = logger
    }

    public func run() async throws {
        try runtime.start()
        let configuration = runtime.configuration
        logger.info("gateway \(configuration.gatewayID) running: \(configuration.summary)")
        notifier.ready(status: "polling \(configuration.devices.count) device(s) on \(configuration.buses.count) bus(es)")
        let interval = notifier.watchdogInterval ?? .seconds(1)
        // Poll loops wake at least every second; a loop silent for far longer is stuck.
        let stuckAfterMillis: Int64 = 10_000 + (configuration.buses.map(\.timeoutMillis).max() ?? 0) * 4
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                if runtime.madeProgress(within: stuckAfterMillis) {
                    notifier.watchdog()
                } else {
                    logger.error("a bus poller or the journal writer made no progress for \(stuckAfterMillis)ms; withholding WATCHDOG=1")
                }
                notifier.status(statusLine)
                try? await Task.sleep(for: interval)
            }
        } onGracefulShutdown: {
            notifier.stopping()
        }
        logger.info("stopping: flushing rings into the journal, waiting for in-flight PUBACKs")
        await runtime.stop()
        logger.info("stopped")
    }

    var statusLine: String {
        let online = runtime.links.filter { $0.status == .online }.count
        let counters = runtime.mqtt.counters
        return "\(online)/\(runtime.links.count) devices online, broker \(runtime.mqtt.isConnected ? "connected" : "disconnected"), "
            + "\(counters.acknowledged) events published"
    }
}
