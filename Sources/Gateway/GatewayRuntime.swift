import AccessModel
import BusPolling
import EventRing
import Foundation
import Journal
import Logging
import MQTTPublisher

/// Every running part of one gateway, wired in data-flow order: pollers → rings → journal writer → journal →
/// publisher → broker, plus housekeeping. Starts them, and stops them so that nothing read is lost.
public final class GatewayRuntime: Sendable {
    public let configuration: GatewayConfiguration
    public let journal: Journal
    public let pollers: [BusPoller]
    public let writer: JournalWriter
    public let mqtt: MQTTPublisher
    public let publisher: EventPublisher
    public let housekeeper: Housekeeper
    public let board: DeviceStateBoard
    public let links: [DeviceLink]
    let logger: Logger

    /// Ring capacity per bus: a burst of several thousand events fits while the journal commits.
    static let ringCapacity = 4096

    public init(configuration: GatewayConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        let journal = try Journal(path: configuration.journalPath)
        self.journal = journal
        let links = configuration.devices.map { DeviceLink(id: $0.id, bus: $0.bus) }
        self.links = links
        let board = DeviceStateBoard(deviceCount: configuration.devices.count)
        self.board = board
        let doorbell = RingDoorbell()
        var pollers: [BusPoller] = []
        var rings: [EventRing<EventRecord>] = []
        var pollerOfDevice = [Int](repeating: 0, count: configuration.devices.count)
        for bus in configuration.buses {
            let slots = configuration.devices.indices.filter { configuration.devices[$0].bus == bus.id }
            let ring = EventRing<EventRecord>(minimumCapacity: Self.ringCapacity)
            for slot in slots { pollerOfDevice[slot] = pollers.count }
            pollers.append(try BusPoller(bus: bus, devices: slots.map { configuration.deviceConfiguration($0) },
                                         links: slots.map { links[$0] }, ring: ring, journalBell: doorbell,
                                         board: board, logger: logger))
            rings.append(ring)
        }
        self.pollers = pollers
        let writer = JournalWriter(journal: journal, rings: rings, doorbell: doorbell, links: links,
                               pollerBells: pollerOfDevice.map { pollers[$0].wakeBell }, configuration: configuration, logger: logger)
        self.writer = writer
        let mqtt = try MQTTPublisher(settings: configuration.mqttSettings, status: .gateway(
            prefix: configuration.mqtt.topicPrefix, site: configuration.site, gateway: configuration.gatewayID), logger: logger)
        self.mqtt = mqtt
        publisher = EventPublisher(journal: journal, mqtt: mqtt, board: board, configuration: configuration,
                                   wakeBell: writer.committedBell, logger: logger)
        housekeeper = Housekeeper(journal: journal, configuration: configuration, links: links, mqtt: mqtt, logger: logger)
    }

    /// Journals `gateway.started`, then starts writer, pollers, publisher and housekeeping. Does not wait for the broker.
    public func start() throws {
        let started = NormalisedEvent(device: configuration.gatewayID, origin: .gateway, type: "gateway.started", alarm: false,
                                      time: .now, recordedTime: .now, fields: [
                                          ("version", .string(GatewayVersion.current)),
                                          ("devices", .int(Int64(configuration.devices.count))),
                                      ])
        let source = EventSource(site: configuration.site, gateway: configuration.gatewayID, device: configuration.gatewayID, kind: "gateway")
        _ = try journal.append([JournalEntry(event: started, source: source,
                                             topic: CloudEvent.topic(of: started, source: source, prefix: configuration.mqtt.topicPrefix))])
        writer.start()
        for poller in pollers { poller.start() }
        try mqtt.start()
        publisher.start()
        housekeeper.start()
    }

    /// Stops polling, commits what the rings hold, waits for in-flight PUBACKs up to `timeout`, disconnects.
    public func stop(timeout: Duration = .seconds(5)) async {
        await offloaded { [pollers, writer] in
            for poller in pollers { poller.stop() }
            writer.stop()
        }
        await mqtt.stop(timeout: timeout)
        await offloaded { [publisher, housekeeper] in
            publisher.stop()
            housekeeper.stop()
        }
    }

    /// True when every bus loop and the journal writer made progress within `millis`: the watchdog's proof.
    public func madeProgress(within millis: Int64) -> Bool {
        let now = monotonicMillis()
        return pollers.allSatisfy { now - $0.lastProgressMillis <= millis } && now - writer.lastProgressMillis <= millis
    }
}

/// Runs blocking teardown off the cooperative pool.
func offloaded(_ body: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { continuation in
        Thread {
            body()
            continuation.resume()
        }.start()
    }
}

public enum GatewayVersion {
    public static let current = "0.1.0"
}

extension GatewayConfiguration {
    /// The publisher's settings from the `mqtt:` section.
    public var mqttSettings: MQTTSettings {
        MQTTSettings(host: mqtt.host, port: UInt16(mqtt.port),
                     tls: mqtt.caFile.map { MQTTSettings.TLS(caFile: $0, certFile: mqtt.certFile, keyFile: mqtt.keyFile) },
                     username: mqtt.username, password: mqtt.password, clientID: mqtt.clientID,
                     protocolVersion: mqtt.protocolVersion == .v5 ? .v5 : .v311, qos: Int32(mqtt.qos),
                     keepalive: .seconds(mqtt.keepaliveSeconds), maxInflight: mqtt.maxInflight)
    }
}
