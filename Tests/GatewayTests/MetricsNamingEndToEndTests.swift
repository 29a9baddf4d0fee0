import DeviceProfiles
import Foundation
import Simulators
import Testing
import TestSupport

@Suite("end to end: what /metrics says (Prometheus naming, HELP, build info, process, per-device series)")
struct MetricsNamingEndToEndTests {
    @Test func everySeriesHasHelpAndFollowsPrometheusNaming() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let port = freeLoopbackPort()
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML, mqttExtra: "  protocol: 5",
                              metricsListen: "127.0.0.1:\(port)")
        // Receipts on (SPEC 4.3), so their series are exported too: the examples use them.
        let centre = try await CommandIssuer(id: "pm-central", broker: harness.broker, directory: harness.directory)
        try harness.enableRequests(from: centre, devices: #"["*"]"#, commands: "[receipt]",
                                   extra: "receipts:\n  enabled: true\n  resend_after: 60s")
        try await harness.start()
        simulator.devices[0].record(code: 16, point: 1)
        let text = try await eventually("metrics with the door's event published and acknowledged") { () -> String? in
            let text = try? await SystemdIntegrationTests.get("http://127.0.0.1:\(port)/metrics").body
            return text.flatMap { $0.contains(#"accessgw_events_total{device="door-3e",type="door.opened"} 1"#)
                && $0.contains("accessgw_mqtt_acknowledged_total ") && !$0.contains("accessgw_mqtt_acknowledged_total 0\n") ? $0 : nil }
        }
        let lines = text.split(separator: "\n").map(String.init)
        let version = try await ChildProcess.run(GatewayHarness.binary, ["--version"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(lines.contains { $0.hasPrefix("accessgw_build_info{version=\"\(version)\",arch=") && $0.hasSuffix("} 1") }, "\(text)")

        // Every TYPE has its HELP right before it; names are snake_case; counters end in _total.
        for (index, line) in lines.enumerated() where line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            let (name, type) = (String(parts[2]), String(parts[3]))
            #expect(index > 0 && lines[index - 1].hasPrefix("# HELP \(name) "), "no HELP for \(name)")
            #expect(name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }, "\(name)")
            if type == "counter" { #expect(name.hasSuffix("_total"), "counter \(name)") }
        }
        #expect(!text.contains(#"="all""#), "no catch-all label values")
        for name in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds", "process_open_fds"] {
            let value = try #require(lines.first { $0.hasPrefix(name + " ") }, "\(name) missing").split(separator: " ").last.flatMap { Double($0) }
            #expect((value ?? 0) > 0, "\(name)")
        }
        func value(_ prefix: String) -> Double? {
            lines.first { $0.hasPrefix(prefix) }?.split(separator: " ").last.flatMap { Double($0) }
        }
        #expect((value(#"accessgw_device_polls_total{device="door-3e",result="ok"}"#) ?? 0) > 0, "\(text)")
        let lastEvent = try #require(value(#"accessgw_device_last_event_timestamp_seconds{device="door-3e"}"#), "\(text)")
        #expect(abs(lastEvent - Date().timeIntervalSince1970) < 120)
        #expect((value("accessgw_mqtt_published_total ") ?? 0) >= 1 && (value("accessgw_mqtt_acknowledged_total ") ?? 0) >= 1)

        // The example alert rules and dashboard use only series this daemon exports.
        let exported = Set(lines.filter { $0.hasPrefix("# TYPE ") }.map { String($0.split(separator: " ")[2]) })
        for example in ["Examples/alerts.yml", "Examples/grafana-dashboard.json"] {
            let content = try String(contentsOf: GatewayHarness.repository.appendingPathComponent(example), encoding: .utf8)
            let used = Set(content.matches(of: /(accessgw|process)_[a-z0-9_]+/).map { match -> String in
                let name = String(match.output.0)
                return name.hasSuffix("_bucket") ? String(name.dropLast(7)) : name
            })
            #expect(!used.isEmpty && used.isSubset(of: exported), "\(example) uses \(used.subtracting(exported).sorted())")
        }
        await #expect(harness.stop() == 0)
    }

    /// Issue 19 item 17: the last-event series of a map-2 device moves when its rules emit (it stayed 0, so the shipped
    /// `AccessgwDeviceSilent` alert fired for every lift monitor), and a device without a clock has no clock-offset
    /// series at all (it read 0).
    @Test func aMapDeviceHasALastEventTimeAndNoClockOffset() async throws {
        let harness = try GatewayHarness()
        let lift = SimulatedDevice(profile: try DeviceProfile.load(
            path: GatewayHarness.repository.appendingPathComponent("Devices/lift-monitor.yaml").path), unit: 2)
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1), lift])
        let port = freeLoopbackPort()
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML + """

              - id: lift
                profile: lift-monitor
                bus: lan
                unit: 2
                poll: 50ms
            """, metricsListen: "127.0.0.1:\(port)")
        try await harness.start()
        func metrics(_ what: String, _ ready: @escaping @Sendable (String) -> Bool) async throws -> String {
            try await eventually(what) { () -> String? in
                let text = try? await SystemdIntegrationTests.get("http://127.0.0.1:\(port)/metrics").body
                return text.flatMap { ready($0) ? $0 : nil }
            }
        }
        // The series exist from the start with 0: wait for a counted poll, which sets the lift's baseline.
        _ = try await metrics("both devices polled") {
            $0.contains(#"accessgw_device_polls_total{device="lift",result="ok"} "#)
                && !$0.contains(#"accessgw_device_polls_total{device="lift",result="ok"} 0"#)
                && $0.contains(#"accessgw_device_clock_offset_seconds{device="door-3e"}"#)
        }
        lift.updateMap { $0.set("overload", 1) }
        let text = try await metrics("the lift's overload event counted") {
            $0.contains(#"accessgw_events_total{device="lift",type="elevator.overload"} 1"#)
        }
        func value(_ prefix: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(prefix) }?.split(separator: " ").last.flatMap { Double($0) }
        }
        let lastEvent = try #require(value(#"accessgw_device_last_event_timestamp_seconds{device="lift"}"#), "\(text)")
        #expect(abs(lastEvent - Date().timeIntervalSince1970) < 120, "\(text)")
        #expect(!text.contains(#"accessgw_device_clock_offset_seconds{device="lift"}"#), "\(text)")
        await #expect(harness.stop() == 0)
    }

    @Test func promtoolAcceptsTheExampleAlertRules() async throws {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/promtool" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let promtool = path else {
            print("promtool is not installed: Examples/alerts.yml checked only against the exported series")
            return
        }
        let rules = GatewayHarness.repository.appendingPathComponent("Examples/alerts.yml").path
        let result = try await ChildProcess.run(promtool, ["check", "rules", rules])
        #expect(result.status == 0, "\(result.output)")
    }
}
