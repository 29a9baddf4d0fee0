import AccessModel
import BusPolling
import Dispatch
import ModbusTransport
import Synchronization

extension GatewayRuntime {
    /// Reads `device` once through its profile on its bus's own thread and renders the report as `accessgw probe`
    /// prints it: the line never gets a second master. Each read of the probe is one transaction between two polls
    /// (never two in a row while a poll is due), so a probe, or a loop of probes, of a dead device costs the
    /// neighbours at most one timeout per turn; the whole probe waits at most `timeoutMillis`, and a read the bus
    /// has not got to by then is dropped unsent. Nothing is acknowledged.
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
        let line = BusProbeLine(poller: poller, bus: bus.id, deadline: .now + .milliseconds(timeoutMillis))
        switch Result(catching: { () throws(ModbusError) in try probe.read(line, unit: device.unit) }) {
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

/// A probe's reads through a running bus poller: each is one line task, run between two polls, waited for until
/// the probe's deadline at most; one the bus has not started by then is withdrawn and never sent.
struct BusProbeLine: ProbeLine {
    let poller: BusPoller
    let bus: String
    let deadline: ContinuousClock.Instant

    func readRegisters(unit: UInt8, address: UInt16, count: Int) throws(ModbusError) -> [UInt16] {
        try transaction(unit: unit, address: address) { connection throws(ModbusError) in
            try connection.readRegisters(unit: unit, address: address, count: count)
        }
    }

    func readRegisters(unit: UInt8, address: UInt16, count: Int, input: Bool, into buffer: UnsafeMutablePointer<UInt16>) throws(ModbusError) {
        // Read into words of the task's own, copied once the read is back: a withdrawn read never writes the caller's buffer.
        let words = try transaction(unit: unit, address: address) { connection throws(ModbusError) -> [UInt16] in
            var words = [UInt16](repeating: 0, count: count)
            try words.withUnsafeMutableBufferPointer { pointer throws(ModbusError) in
                try connection.readRegisters(unit: unit, address: address, count: count, input: input, into: pointer.baseAddress!)
            }
            return words
        }
        for index in 0..<count { buffer[index] = words[index] }
    }

    func readBits(unit: UInt8, address: UInt16, count: Int, discreteInputs: Bool, into bits: UnsafeMutablePointer<UInt8>) throws(ModbusError) {
        let read = try transaction(unit: unit, address: address) { connection throws(ModbusError) -> [UInt8] in
            var bits = [UInt8](repeating: 0, count: count)
            try bits.withUnsafeMutableBufferPointer { pointer throws(ModbusError) in
                try connection.readBits(unit: unit, address: address, count: count, discreteInputs: discreteInputs, into: pointer.baseAddress!)
            }
            return bits
        }
        for index in 0..<count { bits[index] = read[index] }
    }

    /// Runs `body` (one transaction) on the bus thread and waits for it until the deadline.
    func transaction<T: Sendable>(unit: UInt8, address: UInt16,
                                  _ body: @escaping @Sendable (ModbusConnection) throws(ModbusError) -> T) throws(ModbusError) -> T {
        let slot = LineSlot<T>()
        poller.onLine { connection in
            guard slot.begin() else { return }
            slot.finish(Result(catching: { () throws(ModbusError) in try body(connection) }))
        }
        let left = max(.zero, deadline - .now)
        let millis = Int(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
        if slot.done.wait(timeout: .now() + .milliseconds(millis)) == .timedOut {
            guard !slot.withdraw() else {
                throw ModbusError(code: .timeout, call: "probe through the daemon", bus: bus, unit: unit, address: address,
                                  detail: "the bus did not get to this read before the probe's deadline (it serves one probe read between two polls)")
            }
            slot.done.wait()   // already on the line: one transaction, bounded by the bus timeout
        }
        return try slot.outcome!.get()
    }
}

/// One probe read handed to a bus thread: begun by the thread, or withdrawn by the waiting probe, never both.
private final class LineSlot<T: Sendable>: @unchecked Sendable {
    // @unchecked: `outcome` is written once on the bus thread before `done` is signalled, and read after the wait.
    private enum State { case waiting, running, withdrawn }
    private let state = Mutex<State>(.waiting)
    private(set) var outcome: Result<T, ModbusError>?
    let done = DispatchSemaphore(value: 0)

    /// The bus thread takes the read; false when the probe withdrew it.
    func begin() -> Bool {
        state.withLock { state in
            guard state == .waiting else { return false }
            state = .running
            return true
        }
    }

    /// The probe gives up on a read not begun; false when the bus thread already has it.
    func withdraw() -> Bool {
        state.withLock { state in
            guard state == .waiting else { return false }
            state = .withdrawn
            return true
        }
    }

    func finish(_ outcome: Result<T, ModbusError>) {
        self.outcome = outcome
        done.signal()
    }
}
