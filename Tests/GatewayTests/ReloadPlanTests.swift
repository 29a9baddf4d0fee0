import Foundation
import Gateway
import Testing

/// The pure decision of a SIGHUP reload, from two configuration files loaded as the daemon loads them.
@Suite("reload plan: what a SIGHUP restarts")
struct ReloadPlanTests {
    static let devices = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Devices").path

    /// A directory with its own copy of the face-door profile, so a test can edit it.
    final class Files {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("reload-plan-\(UUID().uuidString.prefix(8))").path
        var count = 0

        init() throws {
            try FileManager.default.createDirectory(atPath: "\(directory)/profiles", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: "\(ReloadPlanTests.devices)/face-door.yaml", toPath: "\(directory)/profiles/face-door.yaml")
        }

        deinit { try? FileManager.default.removeItem(atPath: directory) }

        func load(buses: String = Files.buses, devices: String, gateway: String = "", mqtt: String = "",
                  metrics: String = "off") throws -> GatewayConfiguration {
            count += 1
            let path = "\(directory)/gateway-\(count).yaml"
            try """
            gateway:
              id: gw-1
              site: hq
              journal: \(directory)/journal.db
            \(gateway)
            mqtt:
              host: 127.0.0.1
            \(mqtt)
            metrics:
              listen: "\(metrics)"
            buses:
            \(buses)
            devices:
            \(devices)
            profile_dirs: [\(directory)/profiles, \(ReloadPlanTests.devices)]
            """.write(toFile: path, atomically: true, encoding: .utf8)
            return try GatewayConfiguration.load(path: path)
        }

        static let buses = """
          - id: a
            tcp: { host: 127.0.0.1, port: 1502 }
          - id: b
            tcp: { host: 127.0.0.1, port: 1503 }
        """
    }

    static func device(_ id: String, bus: String, unit: Int, profile: String = "face-door", extra: String = "") -> String {
        "  - { id: \(id), profile: \(profile), bus: \(bus), unit: \(unit)\(extra) }"
    }

    static let twoBuses = [device("door-a", bus: "a", unit: 1), device("door-b", bus: "b", unit: 1)].joined(separator: "\n")

    @Test func identicalFileChangesNothing() throws {
        let files = try Files()
        let plan = ReloadPlan(from: try files.load(devices: Self.twoBuses), to: try files.load(devices: Self.twoBuses))
        #expect(!plan.changesPolling)
        #expect(plan.busesToStop.isEmpty && plan.busesToStart.isEmpty)
        #expect(plan.unchangedDevices == ["door-a", "door-b"])
        #expect(plan.sectionsNeedingRestart.isEmpty)
        #expect(plan.summary == "reloaded: restarted buses none; added devices none; removed devices none; unchanged 2")
    }

    @Test func changedPollIntervalAndAddedDeviceRestartOnlyTheirBus() throws {
        let files = try Files()
        let old = try files.load(devices: Self.twoBuses)
        let new = try files.load(devices: [
            Self.device("door-a", bus: "a", unit: 1), Self.device("door-b", bus: "b", unit: 1, extra: ", poll: 50ms"),
            Self.device("lift-b", bus: "b", unit: 2, profile: "elevator"),
        ].joined(separator: "\n"))
        let plan = ReloadPlan(from: old, to: new)
        #expect(plan.busesToStop == ["b"])
        #expect(plan.busesToStart == ["b"])
        #expect(plan.changedDevices == ["door-b"])
        #expect(plan.addedDevices == ["lift-b"])
        #expect(plan.removedDevices.isEmpty)
        #expect(plan.unchangedDevices == ["door-a"])
        #expect(plan.summary == "reloaded: restarted buses b; added devices lift-b; removed devices none; changed devices door-b; unchanged 1")
    }

    @Test func removedDeviceRestartsItsBus() throws {
        let files = try Files()
        let plan = ReloadPlan(from: try files.load(devices: Self.twoBuses), to: try files.load(devices: Self.device("door-a", bus: "a", unit: 1)))
        #expect(plan.removedDevices == ["door-b"])
        #expect(plan.busesToStop == ["b"])
        #expect(plan.busesToStart == ["b"])  // bus b stays configured, now with no device
        #expect(plan.unchangedDevices == ["door-a"])
    }

    @Test func busSettingsRestartTheBusAndItsUnchangedDevices() throws {
        let files = try Files()
        let buses = Files.buses.replacingOccurrences(of: "port: 1502 }", with: "port: 1502 }\n    timeout: 800ms")
        let plan = ReloadPlan(from: try files.load(devices: Self.twoBuses), to: try files.load(buses: buses, devices: Self.twoBuses))
        #expect(plan.busesToStop == ["a"] && plan.busesToStart == ["a"])
        #expect(plan.changedDevices.isEmpty)
        #expect(plan.unchangedDevices == ["door-b"])
    }

    @Test func movingADeviceRestartsBothBuses() throws {
        let files = try Files()
        let moved = [Self.device("door-a", bus: "b", unit: 2), Self.device("door-b", bus: "b", unit: 1)].joined(separator: "\n")
        let plan = ReloadPlan(from: try files.load(devices: Self.twoBuses), to: try files.load(devices: moved))
        #expect(plan.changedDevices == ["door-a"])
        #expect(plan.busesToStop == ["a", "b"])
        #expect(plan.unchangedDevices.isEmpty)
    }

    @Test func addedAndRemovedBusesAreNotCalledRestarted() throws {
        let files = try Files()
        let old = try files.load(devices: Self.twoBuses)
        let buses = Files.buses.replacingOccurrences(of: "id: b\n    tcp: { host: 127.0.0.1, port: 1503 }",
                                                     with: "id: c\n    tcp: { host: 127.0.0.1, port: 1504 }")
        let new = try files.load(buses: buses, devices: [Self.device("door-a", bus: "a", unit: 1), Self.device("door-c", bus: "c", unit: 1)]
            .joined(separator: "\n"))
        let plan = ReloadPlan(from: old, to: new)
        #expect(plan.busesToStop == ["b"])
        #expect(plan.busesToStart == ["c"])
        #expect(plan.restartedBuses.isEmpty)
        #expect(plan.summary == """
            reloaded: restarted buses none; added buses c; removed buses b; added devices door-c; removed devices door-b; unchanged 1
            """)
    }

    @Test func editedProfileFileChangesItsDevices() throws {
        let files = try Files()
        let old = try files.load(devices: Self.twoBuses)
        let path = "\(files.directory)/profiles/face-door.yaml"
        let edited = try String(contentsOfFile: path, encoding: .utf8)
            .replacingOccurrences(of: "description: Face-recognition door controller (generic map v1)",
                                  with: "description: Face-recognition door controller (site firmware)")
        try edited.write(toFile: path, atomically: true, encoding: .utf8)
        let plan = ReloadPlan(from: old, to: try files.load(devices: Self.twoBuses))
        #expect(plan.changedDevices == ["door-a", "door-b"])
        #expect(plan.busesToStop == ["a", "b"])
    }

    @Test func locationChangeIsADeviceChange() throws {
        let files = try Files()
        let moved = [Self.device("door-a", bus: "a", unit: 1, extra: ", location: { building: \"2\" }"), Self.device("door-b", bus: "b", unit: 1)]
        let plan = ReloadPlan(from: try files.load(devices: Self.twoBuses), to: try files.load(devices: moved.joined(separator: "\n")))
        #expect(plan.changedDevices == ["door-a"])
        #expect(plan.busesToStop == ["a"])
    }

    @Test func gatewayMQTTAndMetricsChangesNeedARestartAndAreNotApplied() throws {
        let files = try Files()
        let old = try files.load(devices: Self.twoBuses)
        let new = try files.load(devices: Self.twoBuses, gateway: "  retention: 1d", mqtt: "  port: 1884", metrics: "127.0.0.1:9999")
        let plan = ReloadPlan(from: old, to: new)
        #expect(plan.sectionsNeedingRestart == ["gateway", "mqtt", "metrics"])
        #expect(!plan.changesPolling)
        let applied = new.keepingRestartOnlySections(of: old)
        #expect(applied.mqtt.port == old.mqtt.port)
        #expect(applied.retentionMillis == old.retentionMillis)
        #expect(applied.metricsListen == nil)
        #expect(ReloadPlan(from: old, to: applied).sectionsNeedingRestart.isEmpty)
    }
}
