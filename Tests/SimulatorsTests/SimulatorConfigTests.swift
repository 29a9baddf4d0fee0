import DeviceProfiles
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

    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden").path

    @Test func everyKeyParsesWithItsUnits() throws {
        let yaml = """
            seed: 9
            devices:
              - kind: elevator
                unit: 247
                rtu: { device: /tmp/ttySIM, baud: 19200, parity: e, data_bits: 7, stop_bits: 2, pace: true }
                firmware: "2.10"
                capacity: 3
                boot_id: 65535
                latency: 1500ms
                clock: { offset: -2m, synchronised: no }
                scenario: { rate: 300/m, burst: { count: 4, every: 2s }, backlog: 0, codes: [1, 0x10] }
                faults: { delay: 1s, no_reply: true, exception: 6, exception_probability: 0.25, corrupt_crc: false,
                          drop_connection_after: 3, reboot_after: 1h, overflow: 5 }
            """
        let config = try SimulatorConfig.parse(yaml: yaml, file: "inline")
        let device = try #require(config.devices.first)
        #expect(config.seed == 9 && device.unit == 247 && device.firmware == 2 << 16 | 10)
        #expect(device.transport == .rtu(path: "/tmp/ttySIM", settings: SerialLineSettings(baud: 19200, parity: .even, dataBits: 7, stopBits: 2, pace: true)))
        #expect(device.capacity == 3 && device.bootID == 65535 && device.latencyMilliseconds == 1500)
        #expect(device.clockOffsetSeconds == -120 && !device.clockSynchronised)
        #expect(device.scenario == EventScenario(rate: 5, burst: (4, 2000), codes: [1, 16]))
        #expect(device.faults == DeviceFaults(delayMilliseconds: 1000, noReplyProbability: 1, exceptionCode: 6,
                                              exceptionProbability: 0.25, corruptCRCProbability: 0, dropConnectionAfter: 3))
        #expect(device.rebootAfterMilliseconds == 3_600_000 && device.overflow == 5)
    }

    /// The faults of issue 7's red-team findings, for installers and tests alike.
    @Test func misbehaviourFaultsParse() throws {
        let yaml = """
            devices:
              - kind: face-door
                unit: 1
                tcp: { host: 127.0.0.1, port: 0 }
                faults: { read_only_clock: true, failing_state_block: yes, garbled_window_count: 9, flapping_boot_id: true,
                          window_gap: true, reply_unit: 2, trailing_bytes: 5, padded_reply_bytes: 4,
                          refuse_function_23: true, ignore_function_23: on, garble_function_23: true,
                          function_23_skips_log: yes }
            """
        let faults = try #require(try SimulatorConfig.parse(yaml: yaml, file: "inline").devices.first).faults
        var expected = DeviceFaults()
        expected.readOnlyClock = true
        expected.failingStateBlock = true
        expected.garbledWindowCount = 9
        expected.flappingBootID = true
        expected.windowGap = true
        expected.replyUnit = 2
        expected.trailingBytes = 5
        expected.paddedReplyBytes = 4
        expected.refuseFunction23 = true
        expected.ignoreFunction23 = true
        expected.garbleFunction23 = true
        expected.function23SkipsLog = true
        #expect(faults == expected)
    }

    /// Each golden file holds several mistakes; all of them are reported at once, in file order.
    @Test(arguments: ["unknown-keys", "bad-values", "shared-transports", "syntax", "no-devices"])
    func configErrorsMatchGolden(name: String) throws {
        let expected = try String(contentsOfFile: "\(Self.golden)/\(name).expected", encoding: .utf8)
        do {
            _ = try SimulatorConfig.load(path: "\(Self.golden)/\(name).yaml")
            Issue.record("\(name).yaml loaded without errors")
        } catch {
            #expect(error.description.replacingOccurrences(of: Self.golden + "/", with: "") + "\n" == expected)
        }
    }

    @Test func missingFileIsNamed() {
        #expect(throws: ConfigurationError.self) { try SimulatorConfig.load(path: "/nonexistent/sim.yaml") }
        do { _ = try SimulatorConfig.load(path: "/nonexistent/sim.yaml") } catch {
            #expect(error.description == "/nonexistent/sim.yaml: does not exist")
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
            var heads: [UInt32] = []
            for port in ports.prefix(2) { heads.append(try await Mbpoll.readTCP(port: port, address: 100, count: 2).u32(0)) }
            return heads.allSatisfy { $0 >= 10 }
        }
        let backlog = try await Mbpoll.readTCP(port: ports[2], address: 100, count: 10)
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
