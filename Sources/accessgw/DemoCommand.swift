import ArgumentParser
import Foundation
import Gateway
import Logging
import ServiceLifecycle

/// `accessgw demo`: simulators of all three kinds, a local broker, a gateway and a live view of what a
/// subscriber receives, with nothing to configure. Ctrl-C stops everything.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a whole simulated community: devices, gateway, local broker, live events. Ctrl-C stops."
    )

    @Option(help: "Working directory for the demo's journal, broker and configuration.")
    var directory = NSTemporaryDirectory() + "accessgw-demo"

    func run() async throws {
        GatewayLogHandler.bootstrap(level: .warning)
        let logger = Logger(label: "accessgw.demo")
        let site: DemoSite
        do { site = try DemoSite(directory: directory, logger: logger) } catch { throw CommandFailure("\(error)") }
        defer { site.stop() }
        let configuration: GatewayConfiguration
        do { configuration = try GatewayConfiguration.load(path: site.configurationPath) } catch { throw ConfigFailure(error.description) }
        let runtime = try GatewayRuntime(configuration: configuration, logger: logger)
        let prefix = configuration.mqtt.topicPrefix
        let me = CommandLine.arguments.first ?? "accessgw"
        let header = """
        accessgw demo: \(configuration.devices.count) simulated devices (\(site.hasSerialLine ? "3 on TCP, 2 on an RS-485 line over a pseudo-terminal pair" : "TCP; install socat for an RS-485 line too")),
          broker    mqtt://127.0.0.1:\(site.brokerPort)   (mosquitto_sub -h 127.0.0.1 -p \(site.brokerPort) -t '\(prefix)/#' -v)
          gateway   \(site.configurationPath)
          journal   \(me) tail -f --config \(site.configurationPath)
                    \(me) status --config \(site.configurationPath)
          commands  \(me) send door-3e open --arg door=1 --issuer \(DemoSite.issuer) --key \(site.issuerKeyPath) --config \(site.configurationPath)
                    \(me) send lift-3a call --arg floor=12 --issuer \(DemoSite.issuer) --key \(site.issuerKeyPath) --config \(site.configurationPath)
          replay    python3 Examples/subscriber.py --port \(site.brokerPort) --site \(configuration.site) --client-id demo-sub --issuer \(DemoSite.issuer) --key \(site.issuerKeyPath) --state \(directory)/subscriber.json
                    (signed replay requests fill the gaps it sees; pip install paho-mqtt cryptography)
        Events as a subscriber receives them (Ctrl-C stops everything):


        """
        FileHandle.standardOutput.write(Data(header.utf8))
        let services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: GatewayService(runtime: runtime, logger: logger)),
            .init(service: LiveTail(brokerPort: site.brokerPort, topic: "\(prefix)/+/+/event/#", colour: isatty(STDOUT_FILENO) == 1)),
        ]
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do { try await group.run() } catch { throw CommandFailure("\(error)") }
        print("\ndemo stopped; its journal stays in \(directory)")
    }
}
