import Collector
import DeviceProfiles
import Foundation
import Testing
import TestSupport

@Suite struct CollectorConfigurationTests {
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden").path
    static let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Examples/central.yaml").path

    @Test(arguments: ["central-errors", "central-secrets"])
    func configurationErrorsMatchGolden(name: String) throws {
        let expected = try String(contentsOfFile: "\(Self.golden)/\(name).expected", encoding: .utf8)
        do {
            _ = try CollectorConfiguration.load(path: "\(Self.golden)/\(name).yaml")
            Issue.record("\(name).yaml loaded without errors")
        } catch {
            #expect(error.description.replacingOccurrences(of: Self.golden + "/", with: "") + "\n" == expected)
        }
    }

    /// `accessgw collect` with a bad file: every problem with file:line on stderr, exit 78, like `run`.
    @Test func aBadConfigurationExits78WithFileAndLine() async throws {
        let expected = try String(contentsOfFile: "\(Self.golden)/central-errors.expected", encoding: .utf8)
            .split(separator: "\n").map { "accessgw: \(Self.golden)/\($0)" }.joined(separator: "\n") + "\n"
        for arguments in [["collect", "--config"], ["collect", "--check", "--config"], ["check", "--config"]] {
            let (status, output) = try await ChildProcess.run(CollectorHarness.binary, arguments + ["\(Self.golden)/central-errors.yaml"])
            #expect(status == 78, "\(arguments)")
            #expect(output == expected, "\(arguments)")
        }
    }

    @Test func theExampleNeedsOnlyItsFiles() throws {
        // The example names files of a real installation; parsed as text, only their absence is a problem.
        let text = try String(contentsOfFile: Self.example, encoding: .utf8)
        do {
            _ = try CollectorConfiguration.parse(text, file: "central.yaml")
            Issue.record("the example's files exist on this machine?")
        } catch {
            #expect(error.problems.allSatisfy { $0.message.hasPrefix("cannot read /etc/accessgw/") }, "\(error)")
            #expect(error.problems.map(\.key) == ["mqtt.tls.ca_file", "mqtt.password_file", "database.password_file", "receipts.key_file"])
        }
    }

    @Test func defaultsAndSubscriptions() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let configuration = try CollectorConfiguration.parse("""
            collector: { id: c1, share_group: g }
            mqtt: { host: broker.local, topic_prefix: pm/accessgw }
            database: { url: "postgresql://accessgw@db.local/access" }
            """, file: "central.yaml")
        #expect(configuration.subscriptions == ["$share/g/pm/accessgw/+/+/event/#", "pm/accessgw/+/+/state", "pm/accessgw/+/gateway/+/status"])
        #expect(configuration.mqtt.clientID == "accessgw-collect-c1")
        #expect(configuration.mqtt.sessionExpirySeconds == 0)
        #expect(configuration.database.description == "postgresql://accessgw@db.local:5432/access")
        #expect(configuration.receipts == nil)
        #expect(configuration.metricsListen?.port == 9465)
        let alone = try CollectorConfiguration.parse("""
            collector: { id: c1 }
            mqtt: { host: broker.local }
            database: { url: "postgresql://accessgw@db.local:6543/access" }
            """, file: "central.yaml")
        #expect(alone.subscriptions.first == "accessgw/+/+/event/#")
        #expect(alone.mqtt.sessionExpirySeconds == 3600)
        #expect(alone.database.port == 6543)
    }
}
