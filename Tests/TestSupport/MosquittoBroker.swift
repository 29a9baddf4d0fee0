import Foundation
import Simulators
#if canImport(Glibc)
import Glibc
#endif

/// A real mosquitto broker for one test, on a free loopback port, optionally with TLS and a password file.
/// `stop()` and `restart()` keep the port, so a test can take the broker away and bring it back.
public final class MosquittoBroker: @unchecked Sendable {
    // @unchecked: `process` is only replaced by stop/restart, which a test calls from one task at a time.
    public struct Options: Sendable {
        /// Serve TLS with a generated test CA (`certificates`).
        public var tls = false
        /// With TLS: clients must present a certificate signed by the test CA.
        public var requireClientCertificate = false
        /// Username → password; when not empty, anonymous clients are refused.
        public var users: [String: String] = [:]
        /// Keep sessions and queued messages across `restart()` (saved to the broker's directory on stop).
        public var persistent = false
        /// More lines for mosquitto.conf.
        public var extraConfig: [String] = []

        public init(tls: Bool = false, requireClientCertificate: Bool = false, users: [String: String] = [:],
                    persistent: Bool = false, extraConfig: [String] = []) {
            self.tls = tls
            self.persistent = persistent
            self.requireClientCertificate = requireClientCertificate
            self.users = users
            self.extraConfig = extraConfig
        }
    }

    public struct NotListening: Error, CustomStringConvertible {
        public var port: UInt16
        public var output: String
        public var description: String { "mosquitto did not accept connections on 127.0.0.1:\(port); it said:\n\(output)" }
    }

    public let host = "127.0.0.1"
    public let port: UInt16
    public let options: Options
    public let directory: URL
    public let certificates: TestCertificates?
    private let configFile: URL
    private let logFile: URL
    private var process: ChildProcess?
    private var earlierOutput = ""

    /// Writes the configuration, starts `/usr/sbin/mosquitto -c` and waits until it accepts TCP connections.
    public init(_ options: Options = Options()) throws {
        self.options = options
        port = freeLoopbackPort()
        directory = try makeTemporaryDirectory("mosquitto")
        certificates = options.tls ? try TestCertificates(in: directory) : nil
        // mosquitto started as root drops to its own user: it must be able to write here and read the keys.
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: directory.path)
        if let certificates { try certificates.makeReadableByAll() }
        logFile = directory.appendingPathComponent("mosquitto.log")
        var config = ["listener \(port) 127.0.0.1", "log_dest file \(logFile.path)", "log_timestamp false",
                      "log_type error", "log_type warning", "log_type notice", "log_type information",
                      "allow_anonymous \(options.users.isEmpty)"]
        config += options.persistent
            ? ["persistence true", "persistence_location \(directory.path)/", "autosave_interval 0"]
            : ["persistence false"]
        if !options.users.isEmpty {
            let passwords = directory.appendingPathComponent("passwords").path
            for (index, (user, password)) in options.users.sorted(by: { $0.key < $1.key }).enumerated() {
                let (status, output) = try ChildProcess.runBlocking("/usr/bin/mosquitto_passwd",
                                                            (index == 0 ? ["-c"] : []) + ["-b", passwords, user, password])
                guard status == 0 else { throw NotListening(port: port, output: "mosquitto_passwd: \(output)") }
            }
            config.append("password_file \(passwords)")
        }
        if let certificates {
            config += ["cafile \(certificates.caFile)", "certfile \(certificates.serverCertFile)",
                       "keyfile \(certificates.serverKeyFile)",
                       "require_certificate \(options.requireClientCertificate)"]
        }
        configFile = directory.appendingPathComponent("mosquitto.conf")
        try (config + options.extraConfig).joined(separator: "\n").appending("\n")
            .write(to: configFile, atomically: true, encoding: .utf8)
        try start()
    }

    deinit {
        process?.stop(signal: SIGKILL)
        try? FileManager.default.removeItem(at: directory)
    }

    /// What the broker logged, across restarts.
    public var log: String {
        (try? String(contentsOf: logFile, encoding: .utf8)) ?? earlierOutput + (process?.text ?? "")
    }

    public var isRunning: Bool { process?.isRunning ?? false }

    private func start() throws {
        let child = try ChildProcess("/usr/sbin/mosquitto", ["-c", configFile.path])
        process = child
        let deadline = ContinuousClock.now + .seconds(10)
        while !Self.acceptsConnections(port: port) {
            guard child.isRunning, ContinuousClock.now < deadline else {
                child.stop(signal: SIGKILL)
                throw NotListening(port: port, output: child.text)
            }
            usleep(20_000)
        }
    }

    /// Stops the broker (SIGTERM) and waits for it to exit; connected clients see their connection close.
    public func stop() {
        guard let process else { return }
        process.stop(signal: SIGTERM)
        earlierOutput += process.text
        self.process = nil
    }

    /// Kills the broker (SIGKILL), as a crash would: nothing is saved; `restart()` brings it back on the same port.
    public func crash() {
        guard let process else { return }
        process.stop(signal: SIGKILL)
        earlierOutput += process.text
        self.process = nil
    }

    /// Kills the broker (SIGKILL: a power cut) and starts it again on the same port; without `persistent` it comes
    /// back with no session and no queued message, whatever it had acknowledged.
    public func crashAndRestart() throws {
        crash()
        try start()
    }

    /// Starts the broker again on the same port (stopping it first if it runs).
    public func restart() throws {
        stop()
        try start()
    }

    /// Freezes the broker (SIGSTOP): connections stay open but nothing is answered, PUBACKs included.
    public func pause() {
        if let process, process.isRunning { kill(process.process.processIdentifier, SIGSTOP) }
    }

    /// Lets a paused broker run again (SIGCONT).
    /// SIGHUP: mosquitto reloads its configuration, its ACL file included.
    public func reloadConfiguration() {
        if let process, process.isRunning { kill(process.process.processIdentifier, SIGHUP) }
    }

    public func resume() {
        if let process, process.isRunning { kill(process.process.processIdentifier, SIGCONT) }
    }

    /// mosquitto_sub / mosquitto_pub arguments that reach this broker with its TLS files (and client
    /// certificate when required); credentials are added by the caller.
    public var clientArguments: [String] {
        var arguments = ["-h", host, "-p", String(port)]
        if let certificates {
            arguments += ["--cafile", certificates.caFile]
            if options.requireClientCertificate {
                arguments += ["--cert", certificates.clientCertFile, "--key", certificates.clientKeyFile]
            }
        }
        return arguments
    }

    static func acceptsConnections(port: UInt16) -> Bool { Socket.acceptsConnections(port: port) }
}

/// An independent MQTT client: `mosquitto_sub -d -q 1 -F '%r %t %p'` as a child process, its output parsed
/// into messages. Ready once its SUBACK arrived (`subscribed`).
public final class Subscriber: @unchecked Sendable {
    // @unchecked: only the ChildProcess (itself locked) is shared with its reader thread.
    public struct Message: Sendable, Equatable, CustomStringConvertible {
        public var topic: String
        public var payload: String
        public var retained: Bool
        public var description: String { "\(retained ? "[retained] " : "")\(topic) \(payload)" }

        public init(topic: String, payload: String, retained: Bool) {
            self.topic = topic
            self.payload = payload
            self.retained = retained
        }
    }

    private let process: ChildProcess
    public let topic: String
    /// Whether every message received on one of the gateway's topics is checked against `Schemas/`
    /// (`PayloadValidator`); a test that publishes deliberately foreign payloads turns it off.
    public var validatesPayloads = true
    private let validation = NSLock()
    private var validated = 0

    /// Subscribes to `topic` (wildcards allowed) with QoS 1; `protocolVersion` is mosquitto_sub's `-V` value.
    /// With `sessionID`, the subscriber keeps a persistent session (`-c`): the broker queues its QoS 1
    /// messages while it is away and across a persistent broker's restart.
    public init(broker: MosquittoBroker, topic: String, protocolVersion: String = "mqttv311",
                username: String? = nil, password: String? = nil, sessionID: String? = nil) throws {
        self.topic = topic
        var arguments = broker.clientArguments + ["-d", "-q", "1", "-t", topic, "-V", protocolVersion, "-F", "%r %t %p"]
        arguments += sessionID.map { ["-c", "-i", $0] } ?? ["-i", "sub-\(UUID().uuidString.prefix(8))"]
        if let username { arguments += ["-u", username] }
        if let password { arguments += ["-P", password] }
        // stdbuf: mosquitto_sub writes to a pipe, which stdio would otherwise buffer until exit.
        process = try ChildProcess("/usr/bin/stdbuf", ["-oL", "/usr/bin/mosquitto_sub"] + arguments)
    }

    /// Starts a subscriber and waits for its SUBACK.
    public static func subscribed(to topic: String, on broker: MosquittoBroker, protocolVersion: String = "mqttv311",
                                  username: String? = nil, password: String? = nil, sessionID: String? = nil,
                                  timeout: Duration = .seconds(10)) async throws -> Subscriber {
        let subscriber = try Subscriber(broker: broker, topic: topic, protocolVersion: protocolVersion,
                                        username: username, password: password, sessionID: sessionID)
        try await waitUntil("SUBACK for \(topic)", timeout: timeout) { subscriber.output.contains("received SUBACK") }
        return subscriber
    }

    /// Everything mosquitto_sub printed, debug lines included.
    public var output: String { process.text }

    /// The messages received so far, in arrival order; each is validated against the schemas once.
    public var messages: [Message] {
        let received = parsedMessages
        if validatesPayloads {
            validation.withLock {
                for message in received.dropFirst(validated) {
                    PayloadValidator.shared.expectValid(topic: message.topic, payload: message.payload)
                }
                validated = max(validated, received.count)
            }
        }
        return received
    }

    private var parsedMessages: [Message] {
        output.split(separator: "\n", omittingEmptySubsequences: true).compactMap { line -> Message? in
            guard line.hasPrefix("0 ") || line.hasPrefix("1 ") else { return nil }
            let rest = line.dropFirst(2)
            guard let space = rest.firstIndex(of: " ") else {
                return Message(topic: String(rest), payload: "", retained: line.hasPrefix("1"))
            }
            return Message(topic: String(rest[..<space]), payload: String(rest[rest.index(after: space)...]),
                           retained: line.hasPrefix("1"))
        }
    }

    /// Waits until at least `count` messages arrived and returns them all.
    @discardableResult
    public func waitFor(count: Int, timeout: Duration = .seconds(10)) async throws -> [Message] {
        try await eventually("\(count) messages on \(topic)", timeout: timeout) {
            let received = messages
            return received.count >= count ? received : nil
        }
    }

    public func stop() { process.stop() }
}
