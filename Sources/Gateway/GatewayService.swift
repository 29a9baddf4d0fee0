import AccessModel
import DeviceProfiles
import Logging
import ServiceLifecycle
import UnixSignals

/// The daemon as a `Service`: starts the runtime, tells systemd it is ready, proves progress to the watchdog,
/// reloads the configuration on SIGHUP, and on graceful shutdown (SIGTERM, SIGINT) stops without losing
/// anything. Returning early means failure.
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
        // Trap SIGHUP before anything can send it: its default action would end the process.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        // The checks of `check --online` that need neither broker nor devices (those report themselves once running).
        for finding in OnlineCheck(configuration: runtime.configuration, account: .current).local() {
            switch finding.severity {
            case .ok: logger.debug("\(finding.subject): \(finding.message)")
            case .warning: logger.warning("\(finding.subject): \(finding.message)")
            case .error: logger.error("\(finding.subject): \(finding.message)")
            }
        }
        try runtime.start()
        returnFreedMemoryToTheSystem()
        let configuration = runtime.configuration
        logger.info("gateway \(configuration.gatewayID) running: \(configuration.summary)",
                    metadata: [LogKind.key: "\(LogKind.gatewayStarted)"])
        notifier.ready(status: readyStatus)
        let interval = notifier.watchdogInterval ?? .seconds(1)
        // Poll loops wake at least every second; a loop silent for far longer is stuck.
        let stuckAfterMillis: Int64 = 10_000 + (configuration.buses.map(\.timeoutMillis).max() ?? 0) * 4
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    for await _ in hangups.cancelOnGracefulShutdown() {
                        await reload()
                    }
                }
                while !Task.isShuttingDownGracefully, !Task.isCancelled {
                    if runtime.madeProgress(within: stuckAfterMillis) {
                        notifier.watchdog()
                    } else {
                        logger.error("a bus poller or the journal writer made no progress for \(stuckAfterMillis)ms; withholding WATCHDOG=1")
                    }
                    notifier.status(statusLine)
                    try? await Task.sleep(for: interval)
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            notifier.stopping()
        }
        logger.info("stopping: flushing rings into the journal, waiting for in-flight PUBACKs")
        await runtime.stop()
        logger.info("stopped")
    }

    /// SIGHUP: re-reads and validates the file; an invalid one is logged problem by problem and changes nothing.
    func reload() async {
        notifier.reloading()
        defer { notifier.ready(status: readyStatus) }
        let path = runtime.configuration.file
        logger.info("SIGHUP: reloading \(path)")
        var loaded: GatewayConfiguration
        do { loaded = try GatewayConfiguration.load(path: path) } catch {
            for problem in error.problems { logger.error("\(problem)") }
            logger.error("reload refused: \(path) has \(error.problems.count) problem(s); the running configuration stays")
            return
        }
        if runtime.configuration.readOnly { loaded.makeReadOnly() }  // a flag of `run`, not of the file
        let result = await onDedicatedThread { [runtime, loaded] in Result { try runtime.reload(to: loaded) } }
        returnFreedMemoryToTheSystem()
        switch result {
        case let .success(plan):
            if !plan.sectionsNeedingRestart.isEmpty {
                logger.warning("""
                    changes to \(plan.sectionsNeedingRestart.joined(separator: ", ")) take effect only after a restart \
                    (systemctl restart accessgw); applied the buses and devices
                    """)
            }
            logger.info("\(plan.summary)", metadata: [LogKind.key: "\(LogKind.gatewayReloaded)"])
        case let .failure(error):
            logger.error("reload failed, the running configuration stays: \(error)")
        }
    }

    var readyStatus: String {
        let configuration = runtime.configuration
        return "polling \(configuration.devices.count) device(s) on \(configuration.buses.count) bus(es)"
    }

    var statusLine: String {
        let links = runtime.links
        let online = links.filter { $0.status == .online }.count
        let counters = runtime.mqtt.counters
        return "\(online)/\(links.count) devices online, broker \(runtime.mqtt.isConnected ? "connected" : "disconnected"), "
            + "\(counters.acknowledged) events published"
    }
}
