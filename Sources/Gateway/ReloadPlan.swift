import BusPolling

/// What a SIGHUP reload changes, decided from the running and the new configuration alone. Pure.
///
/// A bus is restarted when its own settings changed or any of its devices was added, removed or changed (any
/// field, the profile file's bytes included); every other bus keeps its poller. The `gateway`, `mqtt` and
/// `metrics` sections cannot change while running: they are named in `sectionsNeedingRestart` and not applied.
public struct ReloadPlan: Sendable, Equatable {
    /// Buses whose poller stops (removed or restarted), in the running configuration's order.
    public var busesToStop: [String] = []
    /// Buses that get a new poller (added or restarted), in the new configuration's order.
    public var busesToStart: [String] = []
    public var addedDevices: [String] = []
    public var removedDevices: [String] = []
    /// Devices kept by id whose settings or profile changed.
    public var changedDevices: [String] = []
    /// Devices whose bus keeps running: they poll on without interruption.
    public var unchangedDevices: [String] = []
    /// Sections that differ and need `systemctl restart accessgw`: some of `gateway`, `mqtt`, `metrics`.
    public var sectionsNeedingRestart: [String] = []

    public init(from old: GatewayConfiguration, to new: GatewayConfiguration) {
        let oldBuses = Dictionary(old.buses.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let newBuses = Dictionary(new.buses.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let oldDevices = Dictionary(old.devices.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let newDevices = Dictionary(new.devices.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var touchedBuses = Set<String>()
        for device in new.devices {
            guard let before = oldDevices[device.id] else {
                addedDevices.append(device.id)
                touchedBuses.insert(device.bus)
                continue
            }
            if !Self.same(before, device) {
                changedDevices.append(device.id)
                touchedBuses.formUnion([before.bus, device.bus])
            }
        }
        for device in old.devices where newDevices[device.id] == nil {
            removedDevices.append(device.id)
            touchedBuses.insert(device.bus)
        }
        for bus in old.buses {
            guard let after = newBuses[bus.id] else { busesToStop.append(bus.id); continue }
            if touchedBuses.contains(bus.id) || !Self.same(bus, after) { busesToStop.append(bus.id) }
        }
        for bus in new.buses where oldBuses[bus.id] == nil || busesToStop.contains(bus.id) {
            busesToStart.append(bus.id)
        }
        unchangedDevices = new.devices.filter { oldDevices[$0.id] != nil && !busesToStart.contains($0.bus) }.map(\.id)
        if !Self.sameGatewaySection(old, new) { sectionsNeedingRestart.append("gateway") }
        if old.mqtt != new.mqtt { sectionsNeedingRestart.append("mqtt") }
        // Issuers, keys, allow rules and TTLs are applied; switching commands on or off is not.
        if old.commands.enabled != new.commands.enabled { sectionsNeedingRestart.append("commands.enabled") }
        if old.metricsListen?.host != new.metricsListen?.host || old.metricsListen?.port != new.metricsListen?.port {
            sectionsNeedingRestart.append("metrics")
        }
    }

    /// Whether the reload changes any bus or device.
    public var changesPolling: Bool { !busesToStop.isEmpty || !busesToStart.isEmpty }

    /// Buses stopped and started again, as opposed to only added or only removed.
    public var restartedBuses: [String] { busesToStart.filter(busesToStop.contains) }

    /// The one info line that says what the reload did.
    public var summary: String {
        func list(_ ids: [String]) -> String { ids.isEmpty ? "none" : ids.joined(separator: ", ") }
        var parts = ["restarted buses \(list(restartedBuses))"]
        let added = busesToStart.filter { !busesToStop.contains($0) }
        let removed = busesToStop.filter { !busesToStart.contains($0) }
        if !added.isEmpty { parts.append("added buses \(list(added))") }
        if !removed.isEmpty { parts.append("removed buses \(list(removed))") }
        parts.append("added devices \(list(addedDevices))")
        parts.append("removed devices \(list(removedDevices))")
        if !changedDevices.isEmpty { parts.append("changed devices \(list(changedDevices))") }
        parts.append("unchanged \(unchangedDevices.count)")
        return "reloaded: " + parts.joined(separator: "; ")
    }

    static func same(_ a: BusConfiguration, _ b: BusConfiguration) -> Bool {
        a.endpoint == b.endpoint && a.timeoutMillis == b.timeoutMillis && a.turnaroundMillis == b.turnaroundMillis
    }

    static func same(_ a: GatewayConfiguration.Device, _ b: GatewayConfiguration.Device) -> Bool {
        a.bus == b.bus && a.unit == b.unit && a.pollMillis == b.pollMillis && a.statePollMillis == b.statePollMillis
            && a.timeSync == b.timeSync && a.location.elementsEqual(b.location, by: { $0 == $1 })
            && a.profile.name == b.profile.name && a.profile.file == b.profile.file && a.profileSource == b.profileSource
    }

    static func sameGatewaySection(_ a: GatewayConfiguration, _ b: GatewayConfiguration) -> Bool {
        a.gatewayID == b.gatewayID && a.site == b.site && a.journalPath == b.journalPath && a.retentionMillis == b.retentionMillis
            && a.maxJournalBytes == b.maxJournalBytes && a.privacy == b.privacy && a.hostClock == b.hostClock
    }
}

extension GatewayConfiguration {
    /// This configuration with the sections a reload cannot apply (`gateway`, `mqtt`, `metrics`) taken from `running`.
    public func keepingRestartOnlySections(of running: GatewayConfiguration) -> GatewayConfiguration {
        var applied = self
        applied.gatewayID = running.gatewayID
        applied.site = running.site
        applied.journalPath = running.journalPath
        applied.retentionMillis = running.retentionMillis
        applied.maxJournalBytes = running.maxJournalBytes
        applied.privacy = running.privacy
        applied.hostClock = running.hostClock
        applied.mqtt = running.mqtt
        applied.metricsListen = running.metricsListen
        applied.receipts = running.receipts
        if commands.enabled != running.commands.enabled { applied.commands = running.commands }
        return applied
    }
}
