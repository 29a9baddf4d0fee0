import Foundation
import Gateway
import Testing
import TestSupport

@Suite("configuration errors (golden)")
struct ConfigurationGoldenTests {
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden").path
    static let devices = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Devices").path

    @Test(arguments: ["typos-and-durations", "devices-and-secrets", "commands", "limits-and-addresses", "billion-laughs"])
    func configurationErrorsMatchGolden(name: String) throws {
        let source = try String(contentsOfFile: "\(Self.golden)/\(name).yaml", encoding: .utf8)
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/\(name).yaml"
        try (source + "profile_dirs: [\(Self.devices)]\n").write(toFile: path, atomically: true, encoding: .utf8)
        let expected = try String(contentsOfFile: "\(Self.golden)/\(name).expected", encoding: .utf8)
        do {
            _ = try GatewayConfiguration.load(path: path)
            Issue.record("\(name).yaml loaded without errors")
        } catch {
            let actual = error.description.replacingOccurrences(of: directory + "/", with: "")
                .replacingOccurrences(of: Self.devices, with: "DEVICES")
            #expect(actual + "\n" == expected)
        }
    }

    @Test func exampleConfigurationIsValidAndDefaultsApply() throws {
        let example = URL(fileURLWithPath: Self.devices).deletingLastPathComponent().appendingPathComponent("Examples/gateway.yaml").path
        let configuration = try GatewayConfiguration.load(path: example)
        #expect(configuration.gatewayID == "gw-01")
        #expect(configuration.mqtt.clientID == "accessgw-kunming-guandu-gw-01")
        #expect(configuration.retentionMillis == 7 * 86_400_000)
        #expect(configuration.maxJournalBytes == 2 << 30)
        #expect(configuration.devices.map(\.id) == ["door-3e"])
        #expect(configuration.devices[0].location.map { "\($0.0)=\($0.1)" } == ["building=3", "entrance=east"])
        #expect(configuration.statusTopic == "accessgw/kunming-guandu/gateway/gw-01/status")
    }

    /// `run` refuses what `check` refuses, as quickly: a "billion laughs" file never reaches alias expansion.
    @Test func runRefusesABillionLaughsFileAtOnceNamingTheLine() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/billion-laughs.yaml"
        try FileManager.default.copyItem(atPath: "\(Self.golden)/billion-laughs.yaml", toPath: path)
        let started = ContinuousClock.now
        let (status, output) = try ChildProcess.run(GatewayHarness.binary, ["run", "--config", path])
        #expect(status != 0)
        #expect(output.contains("billion-laughs.yaml:7: YAML aliases expand the file past 200000 nodes"), "\(output)")
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    func makeDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "accessgw-config-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
