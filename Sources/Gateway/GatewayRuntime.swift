import AccessModel
import BusPolling
import EventRing
import Foundation
import Journal
import Logging
import MQTTPublisher
import RequestAuthority
import Synchronization

/// Every running part of one gateway, wired in data-flow order: pollers → rings → journal writer → journal →
/// publisher → broker, plus housekeeping. Starts them, and stops them so that nothing read is lost.
public final class GatewayRuntime: Sendable {
    /// Held for the runtime's life: one daemon per journal.
    let journalLock: JournalLock
    public let journal: Journal
    public let writer: JournalWriter
    public let mqtt: MQTTPublisher
    public let publisher: EventPublisher
    /// Sends the events the broker refused again, with backoff (issue 19 item 12).
    let refusedRetrier: RefusedRetrier
    public let housekeeper: Housekeeper
    public let board: DeviceStateBoard
    /// Command intake (SPEC 4.1), when `commands.enabled`.
    public let commandIntake: CommandIntake?
    /// Replay (SPEC 4.2), when `replay.enabled` (on with commands).
    public let replayService: ReplayService?
    /// Receipts and re-publication (SPEC 4.3), when `receipts.enabled`.
    public let receiptIntake: ReceiptIntake?
    /// Each configured device's bus poller and link, for the intake; replaced by a reload.
    let targetDirectory: CommandTargetDirectory?
    let doorbell: RingDoorbell
    let wiring: Mutex<Wiring>
    let logger: Logger

    /// Ring capacity per bus: a burst of several thousand events fits while the journal commits.
    static let ringCapacity = 4096

    /// What runs now: the applied configuration, one poller per bus, and the device slots.
    struct Wiring: Sendable {
        var configuration: GatewayConfiguration
        /// In `configuration.buses` order.
        var pollers: [BusPoller]
        var rings: [EventRing<EventRecord>]
        /// Per device slot, including the slots of removed devices (their entries are still decodable).
        var slots: [Slot]

        struct Slot: Sendable {
            var device: GatewayConfiguration.Device
            var link: DeviceLink
            var pollerBell: RingDoorbell
        }

        func slot(of id: String) -> Int? { slots.firstIndex { $0.device.id == id } }
    }

    public init(configuration: GatewayConfiguration, logger: Logger) throws {
        self.logger = logger
        journalLock = try JournalLock(journalPath: configuration.journalPath)
        let journal = try Journal(path: configuration.journalPath, onSchemaRebuild: { rows in
            logger.notice("upgrading the journal's schema: copying its \(rows) events once, this start takes longer")
        })
        self.journal = journal
        let board = DeviceStateBoard(deviceCount: configuration.devices.count)
        self.board = board
        let doorbell = RingDoorbell()
        self.doorbell = doorbell
        let links = configuration.devices.map { DeviceLink(id: $0.id, bus: $0.bus) }
        var slots = zip(configuration.devices, links).map { Wiring.Slot(device: $0, link: $1, pollerBell: RingDoorbell()) }
        var pollers: [BusPoller] = []
        var rings: [EventRing<EventRecord>] = []
        for bus in configuration.buses {
            let onBus = configuration.devices.indices.filter { configuration.devices[$0].bus == bus.id }
            let (poller, ring) = try Self.makePoller(bus, onBus: onBus, slots: &slots, board: board, doorbell: doorbell, journal: journal,
                                                     hostClock: configuration.hostClock, logger: logger)
            pollers.append(poller)
            rings.append(ring)
        }
        let wiring = Wiring(configuration: configuration, pollers: pollers, rings: rings, slots: slots)
        self.wiring = Mutex(wiring)
        let writer = JournalWriter(journal: journal, tables: wiring.writerTables, doorbell: doorbell, configuration: configuration,
                                   logger: logger)
        self.writer = writer
        let mqtt = try MQTTPublisher(settings: configuration.mqttSettings, status: .gateway(
            prefix: configuration.mqtt.topicPrefix, site: configuration.site, gateway: configuration.gatewayID), logger: logger)
        self.mqtt = mqtt
        publisher = EventPublisher(journal: journal, mqtt: mqtt, board: board, configuration: configuration,
                                   wakeBell: writer.committedBell, logger: logger)
        refusedRetrier = RefusedRetrier(journal: journal, mqtt: mqtt, maxInflight: configuration.mqtt.maxInflight, logger: logger)
        housekeeper = Housekeeper(journal: journal, configuration: configuration, links: links, mqtt: mqtt, custody: writer.custody,
                                  publisherBell: writer.committedBell, logger: logger)
        if configuration.commands.enabled, !configuration.readOnly {
            let targets = CommandTargetDirectory()
            commandIntake = CommandIntake(configuration: configuration, journal: journal, mqtt: mqtt, publisherBell: writer.committedBell,
                                          logger: logger) { [targets] id in targets.target(id) }
            targetDirectory = targets
        } else {
            commandIntake = nil
            targetDirectory = nil
        }
        targetDirectory?.replace(wiring.commandTargets)
        replayService = configuration.replay.enabled
            ? ReplayService(configuration: configuration, journal: journal, mqtt: mqtt, logger: logger) : nil
        receiptIntake = configuration.receipts.enabled
            ? ReceiptIntake(configuration: configuration, journal: journal, mqtt: mqtt, logger: logger) : nil
        housekeeper.receipts = receiptIntake
    }

    /// A poller and its ring for the devices in slots `onBus`; those slots get its wake bell.
    static func makePoller(_ bus: BusConfiguration, onBus: [Int], slots: inout [Wiring.Slot], board: DeviceStateBoard,
                           doorbell: RingDoorbell, journal: Journal, hostClock: GatewayConfiguration.HostClockSource,
                           logger: Logger) throws -> (BusPoller, EventRing<EventRecord>) {
        let ring = EventRing<EventRecord>(minimumCapacity: ringCapacity)
        let devices = onBus.map { slot in
            let device = slots[slot].device
            var polled = DeviceConfiguration(id: device.id, slot: UInt16(slot), unit: device.unit, profile: device.profile,
                                             pollMillis: device.pollMillis, statePollMillis: device.statePollMillis, timeSync: device.timeSync)
            if device.profile.map != nil {
                let id = device.id
                polled.loadBaseline = { (try? journal.deviceBaselines())?[id] }
            }
            if device.profile.eventLog != nil {
                let id = device.id
                polled.loadLogCursor = {
                    (try? journal.deviceCursors())?[id].map { LogPosition(serial: DeviceSerial(sanitising: $0.serial), boot: $0.boot, seq: $0.seq) }
                }
            }
            return polled
        }
        let trusted: @Sendable () -> HostClock.Status = { .synchronised }
        let poller = try BusPoller(bus: bus, devices: devices, links: onBus.map { slots[$0].link }, ring: ring,
                                   journalBell: doorbell, board: board, logger: logger,
                                   hostClock: hostClock == .trusted ? trusted : HostClock.status)
        for slot in onBus { slots[slot].pollerBell = poller.wakeBell }
        return (poller, ring)
    }

    /// The configuration running now (after reloads, with the sections a reload cannot change as started).
    public var configuration: GatewayConfiguration { wiring.withLock { $0.configuration } }
    public var pollers: [BusPoller] { wiring.withLock { $0.pollers } }
    /// The links of the configured devices, in configuration order.
    public var links: [DeviceLink] {
        wiring.withLock { wiring in wiring.configuration.devices.compactMap { device in wiring.slot(of: device.id).map { wiring.slots[$0].link } } }
    }

    /// Journals `gateway.started`, then starts writer, pollers, publisher and housekeeping. Does not wait for the broker.
    public func start() throws {
        let configuration = configuration
        let started = NormalisedEvent(device: configuration.gatewayID, origin: .gateway, type: "gateway.started", alarm: false,
                                      time: .now, recordedTime: .now, fields: [
                                          ("version", .string(BuildInfo.version)),
                                          ("devices", .int(Int64(configuration.devices.count))),
                                      ])
        let source = configuration.gatewaySource
        _ = try journal.append([JournalEntry(event: started, source: source,
                                             topic: CloudEvent.topic(of: started, source: source, prefix: configuration.mqtt.topicPrefix))])
        writer.start()
        for poller in pollers { poller.start() }
        commandIntake?.start()
        replayService?.start()
        receiptIntake?.start()
        try mqtt.start()
        publisher.start()
        refusedRetrier.start()
        housekeeper.start()
    }

    /// Stops polling, commits what the rings hold, waits for in-flight PUBACKs up to `timeout`, disconnects.
    public func stop(timeout: Duration = .seconds(5)) async {
        await onDedicatedThread { [pollers, writer] in
            for poller in pollers { poller.stop() }
            writer.stop()
        }
        await onDedicatedThread { [receiptIntake] in receiptIntake?.stop() }
        refusedRetrier.stop()
        await mqtt.stop(timeout: timeout, finalRetained: publisher.finalStates())
        await onDedicatedThread { [publisher, housekeeper] in
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

/// Each configured device's bus poller and link, for the command intake; a reload replaces it.
final class CommandTargetDirectory: Sendable {
    private let targets = Mutex<[String: CommandIntake.Target]>([:])

    func replace(_ new: [String: CommandIntake.Target]) { targets.withLock { $0 = new } }
    func target(_ id: String) -> CommandIntake.Target? { targets.withLock { $0[id] } }
}

extension GatewayRuntime.Wiring {
    /// The configured devices by id with their link and poller.
    var commandTargets: [String: CommandIntake.Target] {
        var targets: [String: CommandIntake.Target] = [:]
        for device in configuration.devices {
            guard let slot = slot(of: device.id), let bus = configuration.buses.firstIndex(where: { $0.id == device.bus }),
                  bus < pollers.count else { continue }
            targets[device.id] = CommandIntake.Target(device: device, link: slots[slot].link, poller: pollers[bus])
        }
        return targets
    }
}

extension GatewayConfiguration {
    /// The publisher's settings from the `mqtt:` section.
    public var mqttSettings: MQTTSettings {
        var settings = MQTTSettings(host: mqtt.host, port: UInt16(mqtt.port),
                                    tls: mqtt.caFile.map { MQTTSettings.TLS(caFile: $0, certFile: mqtt.certFile, keyFile: mqtt.keyFile) },
                                    username: mqtt.username, password: mqtt.password, clientID: mqtt.clientID,
                                    protocolVersion: mqtt.protocolVersion == .v5 ? .v5 : .v311, qos: Int32(mqtt.qos),
                                    keepalive: .seconds(mqtt.keepaliveSeconds), maxInflight: mqtt.maxInflight)
        settings.sessionExpirySeconds = mqtt.sessionExpirySeconds
        // Nothing the gateway subscribes to is larger than a request (16 KiB) and its properties: the broker drops
        // bigger messages for this client instead of sending them (MQTT 5 Maximum Packet Size, SPEC 4.2).
        settings.maximumPacketSize = UInt32(2 * RequestEnvelope.maxPayloadBytes)
        return settings
    }
}
