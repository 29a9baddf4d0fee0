@testable import BusPolling
import DeviceProfiles
import Foundation
import ModbusTransport
import Simulators
import Testing
import TestSupport

/// The write plan's transactions against the barrier simulator over TCP: an `open` pulses coil 0 exactly once.
@Suite("write plan over TCP")
struct WritePlanBusTests {
    @Test func openPulsesCoilZeroOnceAndRestoresIt() throws {
        let devices = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Devices").path
        let profile = try DeviceProfile.load(path: "\(devices)/barrier-gate.yaml")
        var open = try #require(profile.map?.command(named: "open"))
        open.pulseMilliseconds = 50
        var device = SimulatorConfig.Device(kind: .faceDoor, unit: 1, transport: .tcp(host: "127.0.0.1", port: freeLoopbackPort()))
        device.profile = profile
        let host = SimulatorHost(config: SimulatorConfig(devices: [device]))
        try host.start()
        defer { host.stop() }
        guard case .tcp(_, let port) = device.transport else { return }
        let connection = try ModbusConnection(bus: "t", endpoint: .tcp(host: "127.0.0.1", port: Int(port)), responseTimeoutMillis: 1000)
        var plan = WritePlan(open)
        let first = plan.start(deadlinePassed: false)
        var step = try #require(first)
        var outcome: CommandJob.Outcome?
        while outcome == nil {
            if case .done(let done) = step { outcome = done; break }
            if case .pulseThenRestore(let millis) = step {
                #expect(host.device(unit: 1)?.mapValue("open_relay") == 1, "on during the pulse")
                Thread.sleep(forTimeInterval: Double(millis) / 1000)
                step = .write(plan.rest)
                continue
            }
            let result = try #require(WritePlan.transact(step, open, unit: 1, on: connection))
            step = plan.next(after: result, deadlinePassed: false)
        }
        #expect(outcome == .written(attempts: 1))
        #expect(host.device(unit: 1)?.mapWrites == [MapWrite(table: .coils, address: 0, value: 1, function: 5),
                                                     MapWrite(table: .coils, address: 0, value: 0, function: 5)])
    }
}
