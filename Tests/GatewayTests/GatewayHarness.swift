import AccessModel
import Foundation
import Simulators
import TestSupport

/// A real gateway under test: `accessgw run` as a child process, against simulators over real sockets and a
/// real mosquitto on a free loopback port, with a journal in a temporary directory.
final class GatewayHarness: @unchecked Sendable {
    // @unchecked: tests drive a harness from one task at a time.
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static var binary: String {
        ProcessInfo.processInfo.environment["ACCESSGW_BINARY"] ?? repository.appendingPathComponent(".build/debug/accessgw").path
    }

    let directory: URL
    let broker: MosquittoBroker
    var configPath: String { directory.appendingPathComponent("gateway.yaml").path }
    var journalPath: String { directory.appendingPathComponent("journal.db").path }
    private(set) var gateway: ChildProcess?

    init(broker options: MosquittoBroker.Options = MosquittoBroker.Options()) throws {
        directory = try makeTemporaryDirectory("accessgw-e2e")
        broker = try MosquittoBroker(options)
    }

    /// A second gateway on another harness's broker (a fleet sharing one broker).
    init(sharing broker: MosquittoBroker) throws {
        directory = try makeTemporaryDirectory("accessgw-e2e")
        self.broker = broker
    }

    deinit {
        gateway?.stop(signal: SIGKILL)
        broker.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Writes a configuration with `buses` and `devices` (YAML list items) and the broker's address.
    func configure(buses: String, devices: String, mqttExtra: String = "", gatewayExtra: String = "",
                   metricsListen: String = "off", site: String = "test-site", gatewayID: String = "gw-test") throws {
        let yaml = """
        gateway:
          id: \(gatewayID)
          site: \(site)
          journal: \(journalPath)
        \(gatewayExtra)
        mqtt:
          host: 127.0.0.1
          port: \(broker.port)
          keepalive: 5s
        \(mqttExtra)
        metrics:
          listen: "\(metricsListen)"
        buses:
        \(buses)
        devices:
        \(devices)
        profile_dirs: [\(Self.repository.appendingPathComponent("Devices").path)]
        """
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// Starts `accessgw run` and waits until it journalled gateway.started.
    func start(environment: [String: String] = [:], journalStream: Bool = false, arguments: [String] = []) async throws {
        let process = try ChildProcess(Self.binary, ["run", "--config", configPath] + arguments, environment: environment,
                                       journalStream: journalStream)
        gateway = process
        try await waitUntil("gateway to start (log: \(process.text))") {
            guard process.isRunning else { throw GatewayExited(log: process.text) }
            return journalStream || process.text.contains("running:")  // under journald the line goes to its socket
        }
    }

    /// SIGTERM, and the exit status (waited for on a thread of its own, not on the cooperative pool).
    @discardableResult
    func stop() async -> Int32 {
        guard let gateway else { return -1 }
        kill(gateway.process.processIdentifier, SIGTERM)
        let status = await onDedicatedThread { gateway.wait() }
        self.gateway = nil
        return status
    }

    /// SIGKILL: a crash at an arbitrary point.
    func crash() {
        gateway?.stop(signal: SIGKILL)
        gateway = nil
    }

    var log: String { gateway?.text ?? "" }

    /// Runs the `accessgw` binary with `arguments` to completion.
    func accessgw(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await ChildProcess.run(Self.binary, arguments)
    }

    struct GatewayExited: Error, CustomStringConvertible {
        var log: String
        var description: String { "accessgw run exited early:\n\(log)" }
    }
}

/// The `devices:` entry most end-to-end tests use: one face door, unit 1 on bus `lan`, polled every 50 ms.
let doorOnLanYAML = """
  - id: door-3e
    profile: face-door
    bus: lan
    unit: 1
    poll: 50ms
"""

/// A TCP simulator serving `devices` on a free port, stopped when released.
final class TCPSimulator: @unchecked Sendable {
    // @unchecked: the server is itself thread-safe; this wrapper is driven by one test.
    let server: ModbusTCPServer
    let devices: [SimulatedDevice]

    init(_ devices: [SimulatedDevice]) throws {
        self.devices = devices
        server = ModbusTCPServer(host: "127.0.0.1", port: 0, devices: devices)
        try server.start()
    }

    deinit { server.stop() }

    var busYAML: String { "  - id: lan\n    tcp: { host: 127.0.0.1, port: \(server.port) }\n    timeout: 300ms" }
}

/// Decoded CloudEvents received by a subscriber.
struct ReceivedEvent {
    var topic: String
    var id: String
    var type: String
    var data: [String: Any]

    init?(_ message: Subscriber.Message) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(message.payload.utf8))) as? [String: Any],
              let id = object["id"] as? String, let type = object["type"] as? String,
              let data = object["data"] as? [String: Any] else { return nil }
        topic = message.topic
        self.id = id
        self.type = type
        self.data = data
    }

    var device: String { data["device"] as? String ?? "" }
    var seq: Int? { data["seq"] as? Int }
}

extension Subscriber {
    /// The CloudEvents received on event topics.
    var events: [ReceivedEvent] { messages.filter { $0.topic.contains("/event/") }.compactMap(ReceivedEvent.init) }

    func waitForEvents(_ what: String, timeout: Duration = .seconds(20), _ done: @escaping ([ReceivedEvent]) -> Bool) async throws -> [ReceivedEvent] {
        try await eventually(what, timeout: timeout) {
            let received = events
            return done(received) ? received : nil
        }
    }
}
