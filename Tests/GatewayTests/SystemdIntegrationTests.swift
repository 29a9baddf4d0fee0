import AccessModel
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Simulators
import Testing
import TestSupport

@Suite("systemd and operations")
struct SystemdIntegrationTests {
    static let unit = GatewayHarness.repository.appendingPathComponent("Systemd/accessgw.service").path

    @Test func unitFilePassesVerifyAndIsRatedTwoOrLower() async throws {
        let directory = try makeTemporaryDirectory("accessgw-unit")
        defer { try? FileManager.default.removeItem(at: directory) }
        // verify checks that ExecStart exists: point it at the built binary instead of /usr/bin.
        let unit = try String(contentsOfFile: Self.unit, encoding: .utf8)
            .replacingOccurrences(of: "/usr/bin/accessgw", with: GatewayHarness.binary)
        let copy = directory.appendingPathComponent("accessgw.service").path
        try unit.write(toFile: copy, atomically: true, encoding: .utf8)
        let verify = try await ChildProcess.run("systemd-analyze", ["verify", copy])
        #expect(verify.status == 0, "systemd-analyze verify: \(verify.output)")
        let security = try await ChildProcess.run("systemd-analyze", ["security", "--offline=true", copy])
        let exposure = security.output.split(separator: "\n").first { $0.contains("Overall exposure level") }
            .flatMap { line in line.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) } }
        let level = try #require(exposure, "no exposure level in: \(security.output)")
        #expect(level <= 2.0)
    }

    @Test func notifyProtocolSaysReadyWatchdogAndStopping() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        try harness.configure(buses: simulator.busYAML, devices: "  - { id: door-1, profile: face-door, bus: lan, unit: 1 }")
        let socketPath = harness.directory.appendingPathComponent("notify.sock").path
        let listener = try NotifyListener(path: socketPath)
        // The broker is down: READY=1 must not wait for it.
        harness.broker.stop()
        try await harness.start(environment: ["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "1000000"])
        try await waitUntil("READY=1") { listener.messages.contains { $0.contains("READY=1") } }
        try await waitUntil("two WATCHDOG=1 pings") { listener.messages.filter { $0 == "WATCHDOG=1" }.count >= 2 }
        #expect(listener.messages.contains { $0.hasPrefix("STATUS=") && $0.contains("broker disconnected") })
        await #expect(harness.stop() == 0)
        #expect(listener.messages.contains("STOPPING=1"))
    }

    /// Under journald (JOURNAL_STREAM names the daemon's own stderr) entries go to the native socket with fields:
    /// `journalctl DEVICE=door-1` works. The test binds the socket and reads what arrives.
    @Test func underJournaldEntriesCarryDeviceBusAndMessageID() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        try harness.configure(buses: simulator.busYAML, devices: "  - { id: door-1, profile: face-door, bus: lan, unit: 1 }")
        let journal = try DatagramListener()
        try await harness.start(environment: ["ACCESSGW_JOURNAL_SOCKET": journal.path], journalStream: true)
        var entries: [[String: String]] = []
        // Until both the start line and the device's online line arrived (their order is not fixed).
        while !(entries.contains { $0["MESSAGE"] == "device online" } && entries.contains { $0["MESSAGE"]?.contains("running:") == true }),
              let datagram = journal.receive() {
            entries.append(try #require(JournalFields.parse(datagram), "not the native protocol: \(datagram)"))
        }
        let online = try #require(entries.first { $0["MESSAGE"] == "device online" }, "\(entries)")
        #expect(online["DEVICE"] == "door-1" && online["BUS"] == "lan" && online["PRIORITY"] == "6", "\(online)")
        #expect(online["MESSAGE_ID"] == LogKind.deviceOnline.messageID)
        let started = try #require(entries.first { $0["MESSAGE"]?.contains("running:") == true }, "\(entries)")
        #expect(started["MESSAGE_ID"] == LogKind.gatewayStarted.messageID)
        #expect(entries.allSatisfy { $0["SYSLOG_IDENTIFIER"] == "accessgw" && $0["PRIORITY"] != nil })
        #expect(!harness.log.contains("device online"), "entries go to the socket, not stderr: \(harness.log)")
        await #expect(harness.stop() == 0)
    }

    /// A JOURNAL_STREAM inherited by a daemon whose stderr goes elsewhere does not count: plain logfmt lines.
    @Test func aStaleJournalStreamGivesLogfmtLines() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        try harness.configure(buses: simulator.busYAML, devices: "  - { id: door-1, profile: face-door, bus: lan, unit: 1 }")
        try await harness.start(environment: ["JOURNAL_STREAM": "8:12345"])
        try await waitUntil("the device online line") { harness.log.contains("device online") }
        let lines = harness.log.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("time=") && $0.contains(" level=info msg=\"device online\" ") && $0.contains(" device=door-1") })
        #expect(lines.allSatisfy { LogfmtPairs($0) != nil }, "every line is logfmt: \(harness.log)")
        await #expect(harness.stop() == 0)
    }

    @Test func metricsAndHealthAreServedOverHTTP() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let port = freeLoopbackPort()
        try harness.configure(buses: simulator.busYAML, devices: "  - { id: door-1, profile: face-door, bus: lan, unit: 1, poll: 50ms }",
                              metricsListen: "127.0.0.1:\(port)")
        var faults = DeviceFaults()
        faults.trailingBytes = 3  // junk after every reply: dropped before the next request, and counted
        simulator.devices[0].faults = faults
        try await harness.start()
        simulator.devices[0].record(code: 16, point: 1)
        let metrics = try await eventually("metrics with the door's event counted") { () -> String? in
            let text = try? await Self.get("http://127.0.0.1:\(port)/metrics").body
            return text.flatMap {
                $0.contains(#"accessgw_events_total{device="door-1",type="door.opened"} 1"#) && $0.contains("accessgw_mqtt_connected 1") ? $0 : nil
            }
        }
        let discarded = metrics.split(separator: "\n").first { $0.hasPrefix(#"accessgw_modbus_discarded_bytes_total{bus="lan"} "#) }
        #expect((discarded?.split(separator: " ").last).flatMap { Double($0) } ?? 0 > 0, "\(discarded ?? "no discarded bytes series")")
        #expect(metrics.contains(#"accessgw_device_up{device="door-1",bus="lan"} 1"#))
        #expect(metrics.contains(#"accessgw_modbus_requests_total{bus="lan",result="ok"}"#))
        #expect(metrics.contains("accessgw_modbus_request_duration_seconds_bucket"))
        #expect(metrics.contains("accessgw_journal_pending_events"))
        let health = try await Self.get("http://127.0.0.1:\(port)/healthz")
        #expect(health.status == 200)
        await #expect(harness.stop() == 0)
    }

    static func get(_ url: String) async throws -> (status: Int, body: String) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }
}

/// A `$NOTIFY_SOCKET` stand-in: a datagram socket collecting what the daemon sends, as systemd would.
final class NotifyListener: @unchecked Sendable {
    // @unchecked: `received` is guarded by `lock`; the fd is closed once in deinit.
    private let fd: Int32
    private let lock = NSLock()
    private var received: [String] = []

    init(path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw CannotBind(path: path) }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread { [weak self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while let self {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count > 0 {
                    let lines = String(decoding: buffer.prefix(count), as: UTF8.self).split(separator: "\n").map(String.init)
                    self.lock.withLock { self.received += lines }
                } else if count < 0, errno != EAGAIN, errno != EINTR {
                    return
                }
            }
        }.start()
    }

    deinit { close(fd) }

    struct CannotBind: Error { var path: String }

    var messages: [String] { lock.withLock { received } }
}
