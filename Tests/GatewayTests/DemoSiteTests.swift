import Foundation
import Gateway
import Logging
import Testing
import TestSupport

/// `accessgw demo` shows the whole product, remote commands and replay included (issue 19, item 20: it had none
/// configured, so the README's `send` had nothing to talk to).
@Suite("the demo", .serialized)
struct DemoSiteTests {
    @Test func theDemoGatewayTakesASignedCommandFromTheIssuerItPrints() async throws {
        let directory = try makeTemporaryDirectory("accessgw-demo")
        defer { try? FileManager.default.removeItem(at: directory) }
        let demo = directory.appendingPathComponent("demo").path
        let site = try DemoSite(directory: demo, logger: Logger(label: "demo"))
        defer { site.stop() }
        let issuer = "demo-pm", key = "\(demo)/demo-pm.key"
        let configuration = try GatewayConfiguration.load(path: site.configurationPath)
        #expect(configuration.commands.enabled)
        #expect(configuration.replay.enabled)
        #expect(configuration.commands.issuers.map(\.id) == [issuer])
        #expect(FileManager.default.fileExists(atPath: key))

        let gateway = try ChildProcess(GatewayHarness.binary, ["run", "--config", site.configurationPath])
        defer { gateway.stop() }
        try await waitUntil("the demo's gateway running (\(gateway.text))") {
            guard gateway.isRunning else { throw GatewayHarness.GatewayExited(log: gateway.text) }
            return gateway.text.contains("running:")
        }
        // What the demo prints under "commands", run as a user would.
        let sent = try await ChildProcess.run(GatewayHarness.binary, ["send", "door-3e", "open", "--arg", "door=1", "--issuer", issuer,
                                                                "--key", key, "--config", site.configurationPath])
        #expect(sent.status == 0, "\(sent.output)\n\(gateway.text)")
        #expect(sent.output.contains(#""status":"written""#), "\(sent.output)")
    }
}
