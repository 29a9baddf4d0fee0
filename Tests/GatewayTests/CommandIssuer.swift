import Foundation
import RequestAuthority
import TestSupport

/// A property manager's system in the tests: signs requests with its own key and publishes them with
/// `mosquitto_pub -V mqttv5` (user property `signature`, Response Topic, Correlation Data), a second MQTT client
/// independent of the gateway; replies are read by a `mosquitto_sub -V mqttv5` printing topic, correlation data
/// and payload.
final class CommandIssuer: @unchecked Sendable {
    // @unchecked: driven by one test at a time; the reply reader is a locked ChildProcess.
    let id: String
    let key: Ed25519PrivateKey
    let publicKeyFile: String
    let broker: MosquittoBroker
    let replies: ChildProcess
    let replyTopic: String

    /// Replies are read under `accessgw/{site}/reply/{id}/` (SPEC 4.1: the only tree the gateway answers on).
    init(id: String, broker: MosquittoBroker, directory: URL, site: String = "test-site") async throws {
        self.id = id
        self.broker = broker
        key = try Ed25519PrivateKey()
        publicKeyFile = directory.appendingPathComponent("\(id).pub").path
        try key.publicKey.pem().write(toFile: publicKeyFile, atomically: true, encoding: .utf8)
        replyTopic = "accessgw/\(site)/reply/\(id)"
        replies = try ChildProcess("/usr/bin/stdbuf", ["-oL", "/usr/bin/mosquitto_sub"] + broker.clientArguments
            + ["-d", "-V", "mqttv5", "-q", "1", "-t", "\(replyTopic)/#", "-F", "REPLY %t|%D|%p", "-i", "replies-\(id)"])
        try await waitUntil("SUBACK for replies") { [replies] in replies.text.contains("received SUBACK") }
    }

    deinit { replies.stop() }

    /// A request payload as SPEC 4.1 shows it.
    static func payload(id: String, issuer: String, time: Date = Date(), ttlMillis: Int? = 10_000, args: String = "{}") -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        let ttl = ttlMillis.map { ",\"ttl_ms\":\($0)" } ?? ""
        return #"{"id":"\#(id)","issuer":"\#(issuer)","time":"\#(formatter.string(from: time))"\#(ttl),"args":\#(args),"reason":"test"}"#
    }

    /// Publishes `payload` to `topic`, signed by this issuer's key (or by `signer`), asking for a reply with
    /// correlation data `correlation` on `responseTopic` (by default this issuer's `{replyTopic}/{correlation}`).
    func send(topic: String, payload: String, correlation: String, signer: Ed25519PrivateKey? = nil, signed: Bool = true,
              retain: Bool = false, responseTopic: String? = nil) async throws {
        var arguments = broker.clientArguments + ["-V", "mqttv5", "-q", "1", "-t", topic, "-m", payload,
                                                  "-D", "publish", "response-topic", responseTopic ?? "\(replyTopic)/\(correlation)",
                                                  "-D", "publish", "correlation-data", correlation]
        if signed {
            let signature = try RequestAuthority.signature(topic: topic, payload: Array(payload.utf8), key: signer ?? key)
            arguments += ["-D", "publish", "user-property", "signature", signature]
        }
        if retain { arguments.append("-r") }
        let result = try await ChildProcess.run("/usr/bin/mosquitto_pub", arguments)
        precondition(result.status == 0, "mosquitto_pub failed: \(result.output)")
    }

    struct Reply {
        var topic: String
        var correlation: String
        var object: [String: Any]
        var status: String { object["status"] as? String ?? "" }
        var reason: String? { object["reason"] as? String }
        var duplicate: Bool { object["duplicate"] as? Bool ?? false }
    }

    /// Every reply received so far, in order.
    var received: [Reply] {
        replies.text.split(separator: "\n").compactMap { line -> Reply? in
            guard line.hasPrefix("REPLY ") else { return nil }
            let parts = line.dropFirst(6).split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3,
                  let object = (try? JSONSerialization.jsonObject(with: Data(parts[2].utf8))) as? [String: Any] else { return nil }
            return Reply(topic: String(parts[0]), correlation: String(parts[1]), object: object)
        }
    }

    /// Waits for the reply carrying `correlation` (the `n`th such, counting from 1).
    func reply(_ correlation: String, number n: Int = 1, timeout: Duration = .seconds(15)) async throws -> Reply {
        try await eventually("reply \(n) with correlation \(correlation)", timeout: timeout) {
            let matching = received.filter { $0.correlation == correlation }
            return matching.count >= n ? matching[n - 1] : nil
        }
    }
}

extension GatewayHarness {
    /// Appends a `commands:` section with one issuer allowed `commands` on `devices` (and `extra` YAML after it)
    /// to the configuration `configure` wrote.
    func enableRequests(from issuer: CommandIssuer, devices: String = #"["door-*"]"#, commands: String = "[replay]",
                        extra: String = "") throws {
        try (String(contentsOfFile: configPath, encoding: .utf8) + """

        commands:
          enabled: true
          issuers:
            - id: \(issuer.id)
              public_key_file: \(issuer.publicKeyFile)
              allow:
                - { devices: \(devices), commands: \(commands) }
        \(extra)
        """).write(toFile: configPath, atomically: true, encoding: .utf8)
    }
}
