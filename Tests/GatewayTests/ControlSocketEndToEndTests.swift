import AccessModel
import Foundation
@testable import Gateway
import Simulators
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 19, item 11: the daemon's control socket. Idle connections time out and never delay a probe, and a probe
/// of a device that does not answer gets a bounded wait.
@Suite("end to end: the control socket")
struct ControlSocketEndToEndTests {
    @Test func idleConnectionsTimeOutAndNeverDelayAProbe() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1), SimulatedDevice(kind: .faceDoor, unit: 2)])
        simulator.devices[1].faults = DeviceFaults(noReplyProbability: 1)
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML + """

          - id: door-dead
            profile: face-door
            bus: lan
            unit: 2
            poll: 50ms
        """)
        try await harness.start()
        let path = ControlSocket.path(journal: harness.journalPath)

        // Ten connections that never send anything.
        var idle: [Int32] = []
        defer { for fd in idle { close(fd) } }
        for _ in 0..<10 {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = try #require(UnixAddress(path))
            let connected = address.connect(fd)
            #expect(connected, "connect: \(String(cString: strerror(errno)))")
            idle.append(fd)
        }
        // A probe is answered at once all the same (before the fix it waited 5 s behind each idle connection).
        let answer = try ControlSocket.ask(path, .object([("probe", .string("door-3e"))]), timeoutSeconds: 8)
        #expect(answer?["ok"] == .bool(true), "\(String(describing: answer))")

        // A probe of a device that answers nothing fails within its bounded wait, naming the device.
        let dead = try ControlSocket.ask(path, .object([("probe", .string("door-dead"))]),
                                         timeoutSeconds: Int(ControlSocket.probeTimeoutMillis / 1000) + 5)
        #expect(dead?["ok"] == .bool(false), "\(String(describing: dead))")
        if case let .string(error)? = dead?["error"] { #expect(error.contains("door-dead"), "\(error)") }

        // The idle connections were closed by the daemon.
        for fd in idle {
            ControlSocket.setTimeout(fd, seconds: 10)
            var byte: UInt8 = 0
            #expect(read(fd, &byte, 1) == 0, "an idle control connection was left open")
        }
        await #expect(harness.stop() == 0)
    }
}
