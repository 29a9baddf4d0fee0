import Foundation
import AccessModel
import DeviceProfiles
import Gateway
import Testing
import TestSupport

@Suite("configuration errors (golden)")
struct ConfigurationGoldenTests {
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden").path
    static let devices = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Devices").path

    @Test(arguments: ["typos-and-durations", "devices-and-secrets", "commands", "limits-and-addresses", "billion-laughs",
                      "duplicate-keys", "receipts"])
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
            // profile_dirs add to the defaults, which depend on where the test binary is.
            let defaults = ProfileLibrary.defaultDirectories.filter { $0 != Self.devices }.joined(separator: ", ")
            let actual = error.description.replacingOccurrences(of: directory + "/", with: "")
                .replacingOccurrences(of: defaults, with: "DEFAULTS")
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
    @Test func runRefusesABillionLaughsFileAtOnceNamingTheLine() async throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/billion-laughs.yaml"
        try FileManager.default.copyItem(atPath: "\(Self.golden)/billion-laughs.yaml", toPath: path)
        let started = ContinuousClock.now
        let (status, output) = try await ChildProcess.run(GatewayHarness.binary, ["run", "--config", path])
        #expect(status != 0)
        #expect(output.contains("billion-laughs.yaml:7: YAML aliases expand the file past 200000 nodes"), "\(output)")
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    static func minimal(gateway: String = "", profileDirs: String, profile: String = "face-door") -> String {
        """
        gateway:
          id: gw-01
          site: s1
        \(gateway)
        buses:
          - id: lan
            tcp: { host: 127.0.0.1, port: 1502 }
        devices:
          - { id: door-1, profile: \(profile), bus: lan, unit: 1 }
        profile_dirs: [\(profileDirs)]
        """
    }

    /// A key file of random bytes (`head -c 32 /dev/urandom`) is a key, not "cannot read".
    @Test func privacyKeyFileOfRandomBytesIsReadAsTheKey() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var key = (0..<32).map { _ in UInt8.random(in: 0...255) }
        key[0] = 0xFF  // never valid UTF-8
        try Data(key).write(to: URL(fileURLWithPath: "\(directory)/privacy.key"))
        let configuration = try GatewayConfiguration.parse(Self.minimal(gateway: """
          privacy: { person_ids: pseudonymise, key_file: \(directory)/privacy.key }
        """, profileDirs: Self.devices), file: "gateway.yaml")
        #expect(configuration.privacy.key == key)
        let fields = PrivacyFilter(configuration.privacy).apply(to: [("person", .string("P-1"))])
        #expect(fields[0].1 != .string("P-1"))
    }

    /// `profile_dirs` adds to the defaults: a site directory holding nothing still finds face-door, and a site's
    /// own copy of a profile comes first.
    @Test func profileDirsAddToTheDefaults() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let found = try GatewayConfiguration.parse(Self.minimal(profileDirs: directory), file: "gateway.yaml")
        #expect(found.devices[0].profile.name == "face-door")
        #expect(found.profileDirectories.first == directory)
        #expect(found.profileDirectories.dropFirst() == ArraySlice(ProfileLibrary.defaultDirectories))
        let copy = try String(contentsOfFile: "\(Self.devices)/face-door.yaml", encoding: .utf8)
        try copy.write(toFile: "\(directory)/face-door.yaml", atomically: true, encoding: .utf8)
        let overridden = try GatewayConfiguration.parse(Self.minimal(profileDirs: directory), file: "gateway.yaml")
        #expect(overridden.devices[0].profile.file == "\(directory)/face-door.yaml")
    }

    func makeDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "accessgw-config-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
