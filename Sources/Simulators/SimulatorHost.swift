import Foundation
import Logging

/// Runs every simulated device of a config: builds devices, groups them into TCP servers and RTU lines, drives scenarios.
///
/// `@unchecked Sendable` is safe because the server lists and timers are only touched under `lock`.
public final class SimulatorHost: @unchecked Sendable {
    public let config: SimulatorConfig
    /// The devices in config order.
    public let devices: [SimulatedDevice]
    let logger: Logger
    private let lock = NSLock()
    private var tcpServers: [(transport: SimulatorConfig.Transport, server: ModbusTCPServer)] = []
    private var rtuServers: [ModbusRTUServer] = []
    private var driver: ScenarioDriver?
    private var mapDriver: MapActionDriver?
    private var rebootTimers: [DispatchSourceTimer] = []

    /// Builds (but does not start) the devices of `config`.
    public init(config: SimulatorConfig, logger: Logger = Logger(label: "accessgw.simulate")) {
        self.config = config
        self.logger = logger
        devices = config.devices.map { entry in
            if let profile = entry.profile {
                return SimulatedDevice(profile: profile, unit: entry.unit, responseLatencyMilliseconds: entry.latencyMilliseconds,
                                       faults: entry.faults, seed: config.seed)
            }
            let device = SimulatedDevice(
                kind: entry.kind, unit: entry.unit, serial: entry.serial, firmware: entry.firmware,
                capacity: entry.capacity, bootID: entry.bootID, responseLatencyMilliseconds: entry.latencyMilliseconds,
                faults: entry.faults, seed: config.seed, lockReleaseMilliseconds: entry.lockReleaseMilliseconds)
            device.setClock(offsetSeconds: entry.clockOffsetSeconds, synchronised: entry.clockSynchronised)
            device.freesAcknowledged = entry.freesAcknowledged
            return device
        }
    }

    /// Fills backlogs, opens every port and line, and starts the scenarios; on failure stops what started.
    public func start() throws(SimulatorError) {
        for (entry, device) in zip(config.devices, devices) {
            device.fillBacklog(entry.scenario.backlog, codes: entry.scenario.codes)
            if entry.overflow > 0 { device.overflowLog(by: entry.overflow) }
        }
        do throws(SimulatorError) {
            for (transport, group) in groups() {
                switch transport {
                case let .tcp(host, port):
                    let server = ModbusTCPServer(host: host, port: port, devices: group, logger: logger)
                    try server.start()
                    lock.withLock { tcpServers.append((transport, server)) }
                case let .rtu(path, settings):
                    let server = ModbusRTUServer(path: path, settings: settings, devices: group, logger: logger)
                    try server.start()
                    lock.withLock { rtuServers.append(server) }
                }
            }
        } catch {
            stop()
            throw error
        }
        let driver = ScenarioDriver(Array(zip(devices, config.devices.map(\.scenario))))
        driver.start()
        let mapDriver = MapActionDriver(zip(devices, config.devices).filter { $0.1.profile != nil }.map { ($0.0, $0.1.actions) })
        mapDriver.start()
        lock.withLock {
            self.driver = driver
            self.mapDriver = mapDriver
        }
        scheduleReboots()
    }

    /// Stops scenarios, timers, servers and lines, and waits for their threads.
    public func stop() {
        let (driver, mapDriver, timers, tcp, rtu) = lock.withLock {
            defer { self.driver = nil; self.mapDriver = nil; rebootTimers = []; tcpServers = []; rtuServers = [] }
            return (self.driver, self.mapDriver, rebootTimers, tcpServers, rtuServers)
        }
        driver?.stop()
        mapDriver?.stop()
        timers.forEach { $0.cancel() }
        tcp.forEach { $0.server.stop() }
        rtu.forEach { $0.stop() }
    }

    /// The TCP port serving `device` (the kernel's choice when the config said port 0), or nil.
    public func tcpPort(of device: SimulatedDevice) -> UInt16? {
        lock.withLock { tcpServers.first { $0.server.devices[device.unit] === device }?.server.port }
    }

    /// The TCP server serving `device`, for dropping its connections or reading its statistics.
    public func tcpServer(of device: SimulatedDevice) -> ModbusTCPServer? {
        lock.withLock { tcpServers.first { $0.server.devices[device.unit] === device }?.server }
    }

    /// The RTU server serving the line at `path`.
    public func rtuServer(path: String) -> ModbusRTUServer? {
        lock.withLock { rtuServers.first { $0.path == path } }
    }

    /// One line per device: kind, unit, where it is served, and its log.
    public var summary: [String] {
        zip(config.devices, devices).map { entry, device in
            var place = entry.transport.description
            if case let .tcp(host, _) = entry.transport, let port = tcpPort(of: device) { place = "tcp \(host):\(port)" }
            if entry.profile != nil {
                return "\(device.name) unit \(entry.unit) on \(place): \(entry.actions.count) action(s)"
            }
            let status = device.logStatus
            return "\(entry.kind) unit \(entry.unit) serial \(device.serial) on \(place): capacity \(entry.capacity), "
                + "head \(status.head), boot \(status.bootID)"
                + (entry.scenario.rate > 0 ? ", \(entry.scenario.rate) events/s" : "")
        }
    }

    /// Devices grouped by the server that will carry them; TCP port 0 gives each device its own server.
    private func groups() -> [(SimulatorConfig.Transport, [SimulatedDevice])] {
        var order: [SimulatorConfig.Transport] = []
        var byTransport: [SimulatorConfig.Transport: [SimulatedDevice]] = [:]
        var result: [(SimulatorConfig.Transport, [SimulatedDevice])] = []
        for (entry, device) in zip(config.devices, devices) {
            if entry.transport.isEphemeralTCP { result.append((entry.transport, [device])); continue }
            if byTransport[entry.transport] == nil { order.append(entry.transport) }
            byTransport[entry.transport, default: []].append(device)
        }
        return result + order.map { ($0, byTransport[$0]!) }
    }

    private func scheduleReboots() {
        for (entry, device) in zip(config.devices, devices) {
            guard let after = entry.rebootAfterMilliseconds else { continue }
            let timer = DispatchSource.makeTimerSource(queue: .global())
            timer.schedule(deadline: .now() + .milliseconds(after))
            timer.setEventHandler { [logger] in
                device.reboot()
                logger.info("\(device.kind) unit \(device.unit) rebooted (fault reboot_after)")
            }
            timer.resume()
            lock.withLock { rebootTimers.append(timer) }
        }
    }
}
