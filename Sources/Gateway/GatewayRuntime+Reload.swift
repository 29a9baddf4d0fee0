import AccessModel
import BusPolling
import EventRing
import Logging

extension GatewayRuntime {
    /// Applies a new configuration while running (SIGHUP): restarts only the buses the plan names and keeps every
    /// other poller as it is. A stopped poller finishes its transaction and its ring is committed (and acknowledged)
    /// before the writer's tables change, so nothing read is lost. The `gateway`, `mqtt` and `metrics` sections
    /// stay as started. Blocking, and not reentrant: call from one task, off the cooperative pool. Throws, changing
    /// nothing, when a new bus cannot be set up.
    public func reload(to new: GatewayConfiguration) throws -> ReloadPlan {
        var wiring = self.wiring.withLock { $0 }
        let old = wiring.configuration
        let plan = ReloadPlan(from: old, to: new)
        let applied = new.keepingRestartOnlySections(of: old)
        commandIntake?.replace(commands: applied.commands)
        replayService?.replace(configuration: applied)
        receiptIntake?.replace(authority: applied.commands.authority)
        guard plan.changesPolling else {
            self.wiring.withLock { $0.configuration = applied }
            return plan
        }
        // Kept devices keep their slots, new devices get new ones, removed slots stay as they were.
        var slots = wiring.slots
        for device in applied.devices where plan.busesToStart.contains(device.bus) {
            let link = DeviceLink(id: device.id, bus: device.bus)
            if let slot = wiring.slot(of: device.id) {
                slots[slot] = Wiring.Slot(device: device, link: link, pollerBell: slots[slot].pollerBell)
            } else {
                slots.append(Wiring.Slot(device: device, link: link, pollerBell: RingDoorbell()))
            }
        }
        func slot(of id: String) -> Int { slots.firstIndex { $0.device.id == id }! }
        var started: [String: (poller: BusPoller, ring: EventRing<EventRecord>)] = [:]
        for bus in applied.buses where plan.busesToStart.contains(bus.id) {
            let onBus = applied.devices.filter { $0.bus == bus.id }.map { slot(of: $0.id) }
            started[bus.id] = try Self.makePoller(bus, onBus: onBus, slots: &slots, board: board, doorbell: doorbell, journal: journal,
                                                  hostClock: applied.hostClock, logger: logger)
        }
        var stoppedRings: [EventRing<EventRecord>] = []
        for (index, bus) in old.buses.enumerated() where plan.busesToStop.contains(bus.id) {
            wiring.pollers[index].stop()
            stoppedRings.append(wiring.rings[index])
        }
        writer.waitUntilCommitted(stoppedRings)

        var pollers: [BusPoller] = []
        var rings: [EventRing<EventRecord>] = []
        for bus in applied.buses {
            if let new = started[bus.id] {
                pollers.append(new.poller)
                rings.append(new.ring)
            } else if let index = old.buses.firstIndex(where: { $0.id == bus.id }) {
                pollers.append(wiring.pollers[index])
                rings.append(wiring.rings[index])
            }
        }
        wiring = Wiring(configuration: applied, pollers: pollers, rings: rings, slots: slots)
        board.grow(toDeviceCount: slots.count)
        publisher.replaceStateTopics(devices: slots.map(\.device.id), configuration: applied)
        writer.replaceTables(wiring.writerTables)
        housekeeper.replaceDevices(applied.devices.map { device in (device, slots[slot(of: device.id)].link) })
        for bus in applied.buses { started[bus.id]?.poller.start() }
        let running = wiring
        self.wiring.withLock { $0 = running }
        targetDirectory?.replace(running.commandTargets)
        return plan
    }
}

extension GatewayRuntime.Wiring {
    /// The journal writer's view of these rings and slots.
    var writerTables: WriterTables {
        WriterTables(rings: rings, normaliser: EventNormaliser(devices: slots.map(\.device), privacy: configuration.privacy),
                     sources: slots.map { configuration.source(of: $0.device) }, links: slots.map(\.link),
                     pollerBells: slots.map(\.pollerBell))
    }
}
