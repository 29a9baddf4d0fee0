import Foundation
import Gateway
import Logging
import MQTTPublisher
import RequestAuthority

/// A gateway for one benchmark run: a configuration file written to the run's directory, loaded as
/// `accessgw run` would load it, and a `GatewayRuntime` built from it.
struct BenchGateway {
    struct Bus {
        var id: String
        /// The `tcp:` or `rtu:` mapping of the bus, as YAML flow text.
        var endpoint: String
        var timeout = "300ms"
        var turnaround = "0ms"
    }

    struct Device {
        var id: String
        var profile: String
        var bus: String
        var unit: Int
    }

    let runtime: GatewayRuntime

    init(directory: URL, brokerPort: UInt16, maxInflight: Int, poll: String, buses: [Bus], devices: [Device],
         extraYAML: String = "", logger: Logger) throws {
        var yaml = """
        gateway:
          id: gw-bench
          site: bench-site
          journal: \(directory.path)/journal.db
        mqtt:
          host: 127.0.0.1
          port: \(brokerPort)
          topic_prefix: bench
          max_inflight: \(maxInflight)
        metrics:
          listen: "off"
        buses:

        """
        for bus in buses {
            yaml += "  - { id: \(bus.id), \(bus.endpoint), timeout: \(bus.timeout), turnaround: \(bus.turnaround) }\n"
        }
        yaml += "devices:\n"
        for device in devices {
            yaml += "  - { id: \(device.id), profile: \(device.profile), bus: \(device.bus), unit: \(device.unit), poll: \(poll) }\n"
        }
        yaml += extraYAML.isEmpty ? "" : extraYAML + "\n"
        let path = directory.appendingPathComponent("gateway.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let configuration: GatewayConfiguration
        do { configuration = try GatewayConfiguration.load(path: path) } catch {
            throw BenchError("the bench's gateway configuration is invalid: \(error.description)")
        }
        runtime = try GatewayRuntime(configuration: configuration, logger: logger)
    }
}

func makeRunDirectory(_ name: String) throws -> URL {
    let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The property manager's system of a benchmark: an Ed25519 key whose public half the gateway's `commands:`
/// section trusts for `permissions` on every device, and an MQTT 5 client to send its signed requests.
struct BenchIssuer {
    let id: String
    let key: Ed25519PrivateKey
    let publicKeyFile: String
    let permissions: String

    init(directory: URL, id: String, permissions: String) throws {
        self.id = id
        self.permissions = permissions
        key = try Ed25519PrivateKey()
        publicKeyFile = directory.appendingPathComponent("\(id).pub").path
        try key.publicKey.pem().write(toFile: publicKeyFile, atomically: true, encoding: .utf8)
    }

    /// The `commands:` section for BenchGateway's `extraYAML`.
    var yaml: String {
        """
        commands:
          enabled: true
          issuers:
            - id: \(id)
              public_key_file: \(publicKeyFile)
              allow:
                - { devices: ["*"], commands: \(permissions) }
        """
    }

    /// The issuer's MQTT 5 client, not yet started (subscribe first).
    func connect(port: UInt16, logger: Logger) throws -> MQTTPublisher {
        var settings = MQTTSettings(host: "127.0.0.1", port: port, clientID: "bench-issuer-\(id)")
        settings.keepalive = .seconds(30)
        return try MQTTPublisher(settings: settings, logger: logger)
    }
}
