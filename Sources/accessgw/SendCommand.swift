import AccessModel
import ArgumentParser
import Foundation
import Gateway
import Logging
import MQTTPublisher
import RequestAuthority

/// `accessgw send DEVICE COMMAND`: sign a command as an issuer, publish it, print the gateway's reply (SPEC 4.1).
struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Sign and publish a command (open, close, call…), wait for the gateway's reply and print it; exit 0 only when written."
    )

    @Argument(help: "Device id, as in the gateway's configuration.") var device: String
    @Argument(help: "Command name from the device's profile (open, close, call).") var command: String
    @Option(name: .customLong("arg"), help: "An argument KEY=VALUE (whole number), e.g. --arg floor=12; repeatable.") var args: [String] = []
    @Option(help: "Issuer id, as in commands.issuers.") var issuer: String
    @Option(help: "The issuer's private key file (from accessgw keygen).") var key: String
    @Option(help: "How long the command stays valid, e.g. 10s.") var ttl = "10s"
    @Option(help: "Why (goes into the request's reason).") var reason: String?
    @Option(help: "Gateway configuration: its broker, topic prefix and site.") var config: String?
    @Option(help: "Broker HOST:PORT, instead of --config.") var broker: String?
    @Option(help: "Site, with --broker.") var site: String?
    @Option(help: "Topic prefix, with --broker.") var topicPrefix = "accessgw"
    @Option(help: "MQTT username, with --broker.") var username: String?
    @Option(help: "File holding the MQTT password, with --broker.") var passwordFile: String?
    @Option(help: "TLS: the CA file that signed the broker's certificate, with --broker (mqtts).") var caFile: String?
    @Option(help: "TLS: a client certificate file, with --ca-file, for brokers that require one.") var certFile: String?
    @Option(help: "TLS: the client certificate's private key file, with --cert-file.") var certKeyFile: String?

    func run() async throws {
        guard let ttlMillis = DurationText.milliseconds(ttl), ttlMillis > 0 else { throw ValidationError("--ttl '\(ttl)' is not a duration such as 10s") }
        var parsedArgs: [(String, JSONValue)] = []
        for arg in args {
            let parts = arg.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let value = Int64(parts[1]) else { throw ValidationError("--arg '\(arg)' is not KEY=NUMBER") }
            parsedArgs.append((String(parts[0]), .int(value)))
        }
        let settings: MQTTSettings, prefix: String, siteName: String
        if let broker {
            guard let endpoint = HostPort(broker) else { throw ValidationError("--broker '\(broker)' is not HOST:PORT") }
            guard let site else { throw ValidationError("--broker needs --site") }
            var password: String?
            if let passwordFile {
                guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                    throw CommandFailure("cannot read \(passwordFile)")
                }
                password = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            guard caFile != nil || (certFile == nil && certKeyFile == nil) else { throw ValidationError("--cert-file and --cert-key-file need --ca-file") }
            guard (certFile == nil) == (certKeyFile == nil) else { throw ValidationError("--cert-file and --cert-key-file go together") }
            settings = MQTTSettings(host: endpoint.host, port: endpoint.port,
                                    tls: caFile.map { MQTTSettings.TLS(caFile: $0, certFile: certFile, keyFile: certKeyFile) },
                                    username: username, password: password, clientID: "accessgw-send")
            prefix = topicPrefix
            siteName = site
        } else {
            guard caFile == nil, certFile == nil, certKeyFile == nil else {
                throw ValidationError("--ca-file, --cert-file and --cert-key-file go with --broker (with --config the mqtt: section's tls is used)")
            }
            let path = config ?? GatewayConfiguration.defaultPath
            let loaded: GatewayConfiguration
            do { loaded = try GatewayConfiguration.load(path: path) } catch { throw ConfigFailure(error.description) }
            settings = loaded.mqttSettings
            prefix = loaded.mqtt.topicPrefix
            siteName = loaded.site
        }
        let privateKey: Ed25519PrivateKey
        do { privateKey = try IssuerKeyFiles.privateKey(at: key) } catch { throw CommandFailure(error.message) }
        var logger = Logger(label: "accessgw.send")
        logger.logLevel = .critical
        let sender = CommandSender(settings: settings, topicPrefix: prefix, site: siteName, logger: logger)
        let reply: CommandSender.Reply
        do {
            reply = try await sender.send(device: device, command: command, args: parsedArgs, issuer: issuer, key: privateKey,
                                          ttlMillis: ttlMillis, reason: reason)
        } catch {
            throw CommandFailure("\(error)")
        }
        print(reply.text)
        if reply.status != "written" { throw ExitCode(1) }
    }
}
