import AccessModel
import BusPolling
import Dispatch
import ModbusTransport

extension GatewayRuntime {
    /// Reads `device` once through its profile on its bus's own thread, between two polls (after any waiting
    /// command), and renders the report as `accessgw probe` prints it: the line never gets a second master.
    /// Nothing is acknowledged; the device's events are polled and delivered as before.
    public func probe(device id: String, timeoutMillis: Int64) -> Result<String, ControlFailure> {
        let found = wiring.withLock { wiring -> (GatewayConfiguration.Device, BusConfiguration, BusPoller)? in
            guard let device = wiring.configuration.devices.first(where: { $0.id == id }),
                  let index = wiring.configuration.buses.firstIndex(where: { $0.id == device.bus }),
                  index < wiring.pollers.count else { return nil }
            return (device, wiring.configuration.buses[index], wiring.pollers[index])
        }
        guard let (device, bus, poller) = found else {
            let known = configuration.devices.map(\.id).joined(separator: ", ")
            return .failure(ControlFailure("no device '\(id)' in the running configuration (devices: \(known))"))
        }
        let probe = DeviceProbe(profile: device.profile, device: device.id)
        let outcome = ProbeOutcome()
        poller.onLine { [unit = device.unit] connection in
            outcome.finish(Result { () throws(ModbusError) in try probe.read(connection, unit: unit) })
        }
        guard outcome.done.wait(timeout: .now() + .milliseconds(Int(timeoutMillis))) == .success,
              let result = outcome.result else {
            return .failure(ControlFailure("bus \(bus.id) did not get to the probe of \(id) within \(timeoutMillis / 1000) s"))
        }
        switch result {
        case let .success(report):
            logger.info("probe of \(id) read on the bus thread", metadata: ["device": "\(id)", "bus": "\(bus.id)",
                                                                            LogKind.key: "\(LogKind.probeServed)"])
            return .success(report.rendered(profile: device.profile, device: device.id,
                                            bus: DeviceProbe.busLabel(bus: bus.id, endpoint: bus.endpoint, unit: device.unit)))
        case let .failure(error):
            return .failure(ControlFailure("\(id) on \(error)"))
        }
    }
}

/// What a probe on a bus thread produced, handed back to the waiting control request.
private final class ProbeOutcome: @unchecked Sendable {
    // @unchecked: `result` is written once on the bus thread before `done` is signalled, and read after the wait.
    private(set) var result: Result<DeviceProbe.Report, ModbusError>?
    let done = DispatchSemaphore(value: 0)

    func finish(_ result: Result<DeviceProbe.Report, ModbusError>) {
        self.result = result
        done.signal()
    }
}
