import Logging

/// Shortcuts for tests and tools: one device on a free loopback port, or several units on one serial line.
extension SimulatorHost {
    /// Starts one device of `kind` on 127.0.0.1 at a kernel-chosen port; read the port with `tcpPort(of:)`.
    public static func startTCP(_ kind: DeviceKind, unit: UInt8 = 1, capacity: Int = 1000,
                                scenario: EventScenario = .idle, faults: DeviceFaults = .none,
                                logger: Logger = Logger(label: "accessgw.simulate")) throws(SimulatorError)
        -> (host: SimulatorHost, device: SimulatedDevice, port: UInt16) {
        let entry = SimulatorConfig.Device(kind: kind, unit: unit, transport: .tcp(host: "127.0.0.1", port: 0),
                                           capacity: capacity, scenario: scenario, faults: faults)
        let host = SimulatorHost(config: SimulatorConfig(devices: [entry]), logger: logger)
        try host.start()
        let device = host.devices[0]
        return (host, device, host.tcpPort(of: device) ?? 0)
    }

    /// Starts devices (kind, unit) sharing the serial line at `path`, e.g. a test's pseudo-terminal.
    public static func startRTU(path: String, settings: SerialLineSettings = SerialLineSettings(),
                                units: [(DeviceKind, UInt8)], capacity: Int = 1000,
                                latencyMilliseconds: Int = 0,
                                logger: Logger = Logger(label: "accessgw.simulate")) throws(SimulatorError)
        -> SimulatorHost {
        let entries = units.map { kind, unit in
            var entry = SimulatorConfig.Device(kind: kind, unit: unit, transport: .rtu(path: path, settings: settings),
                                               capacity: capacity)
            entry.latencyMilliseconds = latencyMilliseconds
            return entry
        }
        let host = SimulatorHost(config: SimulatorConfig(devices: entries), logger: logger)
        try host.start()
        return host
    }

    /// The device serving `unit`, the first one when several transports reuse the unit.
    public func device(unit: UInt8) -> SimulatedDevice? { devices.first { $0.unit == unit } }
}
