import Foundation
import Simulators
import Testing
import TestSupport

@Suite("Simulator config and host")
struct SimulatorConfigTests {
    static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Examples")

    @Test func bothExamplesParse() throws {
        let demo = try SimulatorConfig.load(path: Self.examples.appendingPathComponent("simulators-demo.yaml").path)
        #expect(demo.devices.map(\.kind) == [.faceDoor, .plateReader, .elevator])
        #expect(demo.devices[0].scenario.rate == 2 && demo.devices[0].scenario.burst?.count == 20)
        #expect(demo.devices[1].clockOffsetSeconds == -45 && !demo.devices[1].clockSynchronised)
        #expect(demo.devices[2].faults.delayMilliseconds == 20 && demo.devices[2].rebootAfterMilliseconds == 600_000)
        let line = try SimulatorConfig.load(path: Self.examples.appendingPathComponent("simulators-rs485.yaml").path)
        #expect(line.devices.map(\.unit) == [1, 2, 3])
        #expect(Set(line.devices.map(\.transport)).count == 1)
    }

    @Test(arguments: [
        ("devices:\n  - kind: face-door\n    tcp: { port: 1 }\n    colour: red\n",
         "sim.yaml:4: unknown key 'colour' in a device (known: boot_id, capacity, clock, faults, firmware, kind, latency, rtu, scenario, serial, tcp, unit)"),
        ("devices:\n  - kind: door\n    tcp: { port: 1 }\n",
         "sim.yaml:2: unknown kind 'door' (face-door, plate-reader, elevator)"),
        ("devices:\n  - kind: elevator\n    unit: 1\n",
         "sim.yaml:2: device needs exactly one of 'tcp' or 'rtu'"),
        ("devices:\n  - kind: elevator\n    tcp: { port: 1 }\n    faults: { delay: soon }\n",
         "sim.yaml:4: 'delay' must be a duration such as 200ms, 5s or 10m, not 'soon'"),
        ("devices:\n  - kind: elevator\n    rtu: { device: /dev/x, baud: 9600 }\n  - kind: elevator\n    rtu: { device: /dev/x, baud: 19200 }\n    unit: 2\n",
         "sim.yaml:4: rtu /dev/x is configured as 9600 8N1 and as 19200 8N1"),
        ("devices: [\n", "sim.yaml:2: invalid YAML: did not find expected node content"),
    ])
    func configErrorsNameFileLineAndKey(yaml: String, message: String) {
        do {
            _ = try SimulatorConfig.parse(yaml: yaml, file: "sim.yaml")
            Issue.record("no error for \(yaml)")
        } catch {
            #expect("\(error)" == message)
        }
    }

    @Test func hostServesEveryDeviceAndRunsTheirScenarios() async throws {
        let yaml = """
            devices:
              - { kind: face-door, unit: 1, tcp: { port: 0 }, scenario: { rate: 50/s } }
              - { kind: plate-reader, unit: 1, tcp: { port: 0 }, scenario: { burst: { count: 5, every: 100ms } } }
              - { kind: elevator, unit: 1, tcp: { port: 0 }, scenario: { backlog: 50000 }, capacity: 50000 }
            """
        let host = SimulatorHost(config: try SimulatorConfig.parse(yaml: yaml, file: "inline"))
        try host.start()
        defer { host.stop() }
        let ports = host.devices.compactMap { host.tcpPort(of: $0) }
        #expect(ports.count == 3 && Set(ports).count == 3)
        try await waitUntil("face-door and plate-reader scenarios to record events") {
            let heads = try ports.prefix(2).map { try Mbpoll.readTCP(port: $0, address: 100, count: 2).u32(0) }
            return heads.allSatisfy { $0 >= 10 }
        }
        let backlog = try Mbpoll.readTCP(port: ports[2], address: 100, count: 10)
        #expect(backlog.u32(0) == 50_000 && backlog.u32(2) == 1 && backlog[8] == 50_000 && backlog[9] & 2 == 2)
        #expect(host.summary.count == 3)
    }

    @Test func realisticMixUsesTheKindsSubjects() throws {
        let device = SimulatedDevice(kind: .plateReader, seed: 7)
        device.fillBacklog(200, codes: [1])
        let plates = (1...200).compactMap { device.event(seq: UInt32($0)) }
        #expect(plates.allSatisfy { $0.code == 1 && $0.extra & 0xFFFF != 0 })
        #expect(plates.contains { $0.extra & 0xFFFF == 5 })
        #expect(plates.contains { $0.extra & 0xFFFF == 1 })
    }
}
