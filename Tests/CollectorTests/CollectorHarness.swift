import AccessModel
import Collector
import Foundation
import Logging
import MQTTPublisher
import RequestAuthority
import Synchronization
import TestSupport

/// The centre under test: a private PostgreSQL cluster, a real mosquitto as the central broker, `accessgw collect`
/// as child processes, and an in-process MQTT client standing in for the gateways (it publishes their events and
/// reads the receipts, signature included).
final class CollectorHarness: @unchecked Sendable {
    // @unchecked: tests drive a harness from one task at a time; `receipts` sit behind a Mutex.
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static var binary: String {
        ProcessInfo.processInfo.environment["ACCESSGW_BINARY"] ?? repository.appendingPathComponent(".build/debug/accessgw").path
    }
    static let site = "site-a", gateway = "gw-01", epoch = "9f3a1c0d", issuer = "pm-central"

    let directory: URL
    let postgres: PostgresCluster
    let broker: MosquittoBroker
    let database = "access"
    let key: Ed25519PrivateKey
    let gateways: MQTTPublisher
    private let received = Received()

    /// The receipts the test client got, shared with libmosquitto's network thread.
    final class Received: Sendable {
        let messages = Mutex<[IncomingMessage]>([])
        func withLock<T>(_ body: (inout [IncomingMessage]) -> T) -> T { messages.withLock { body(&$0) } }
    }
    private(set) var collectors: [String: ChildProcess] = [:]

    init() async throws {
        directory = try makeTemporaryDirectory("accessgw-collect")
        postgres = try PostgresCluster()
        try postgres.createDatabase(database)
        broker = try MosquittoBroker()
        key = try Ed25519PrivateKey()
        try key.pem().write(toFile: directory.appendingPathComponent("\(Self.issuer).key").path, atomically: true, encoding: .utf8)
        var logger = Logger(label: "accessgw.collect.test")
        logger.logLevel = .critical
        gateways = try MQTTPublisher(settings: MQTTSettings(host: broker.host, port: broker.port, clientID: "test-gateways",
                                                            keepalive: .seconds(10), maxInflight: 1000,
                                                            reconnectDelay: .seconds(1) ... .seconds(1)), logger: logger)
        gateways.subscribe("accessgw/+/gateway/+/receipt") { [received] message in received.withLock { $0.append(message) } }
        try gateways.start()
        try await waitUntil("the test client connected") { self.gateways.isConnected && self.gateways.subscriptionsAcknowledged > 0 }
    }

    deinit {
        for collector in collectors.values { collector.stop(signal: SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }

    func stopAll() async {
        for collector in collectors.values { collector.stop() }
        collectors = [:]
        await gateways.stop(timeout: .seconds(1))
        broker.stop()
        postgres.stop()
    }

    /// Writes `NAME.yaml` for collector `name` and returns its path.
    func configure(_ name: String, shareGroup: String? = "collectors", batchWait: String = "20ms", extra: String = "") throws -> String {
        let path = directory.appendingPathComponent("\(name).yaml").path
        let text = """
            collector: { id: \(name)\(shareGroup.map { ", share_group: \($0)" } ?? "") }
            mqtt: { host: 127.0.0.1, port: \(broker.port), keepalive: 5s }
            database: { url: "\(postgres.url(database: database))", batch_wait: \(batchWait) }
            receipts: { issuer: \(Self.issuer), key_file: \(directory.appendingPathComponent("\(Self.issuer).key").path) }
            metrics: { listen: "off" }
            \(extra)
            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Starts `accessgw collect` as collector `name` and waits until it is subscribed.
    @discardableResult
    func startCollector(_ name: String = "central-1", shareGroup: String? = "collectors", batchWait: String = "20ms",
                        logLevel: String = "debug") async throws -> ChildProcess {
        let path = try configure(name, shareGroup: shareGroup, batchWait: batchWait)
        let child = try ChildProcess(Self.binary, ["collect", "--config", path, "--log-level", logLevel])
        collectors[name] = child
        try await waitUntil("collector \(name) subscribed", timeout: .seconds(20)) {
            guard child.isRunning else { throw CollectorExited(name: name, log: child.text) }
            return child.text.contains("connected to MQTT broker")
        }
        // Subscriptions are sent right after the CONNACK; give the broker the moment it needs to apply them.
        try await Task.sleep(for: .milliseconds(300))
        return child
    }

    struct CollectorExited: Error, CustomStringConvertible {
        var name: String
        var log: String
        var description: String { "collector \(name) exited:\n\(log)" }
    }

    // MARK: Events

    static func eventID(_ gwseq: Int64, device: String = "door-1") -> String { "\(site)/\(device)/SN1.1/\(gwseq)" }

    /// A CloudEvent as a gateway with receipts publishes it: with `gwepoch` and `gwseq`.
    static func event(_ gwseq: Int64, device: String = "door-1", type: String = "access.granted", id: String? = nil,
                      epoch: String = epoch, data extra: String = "", person: String = "P-0012") -> String {
        let now = "2026-12-07T08:00:00.100Z"  // fixed: a resent event is the same bytes
        return #"{"specversion":"1.0","id":"\#(id ?? eventID(gwseq, device: device))","source":"/accessgw/\#(site)/\#(device)","#
            + #""type":"\#(type)","time":"2026-12-07T08:00:00.000Z","subject":"\#(device)","recordedtime":"\#(now)","#
            + #""datacontenttype":"application/json","gwepoch":"\#(epoch)","gwseq":\#(gwseq),"#
            + #""data":{"site":"\#(site)","gateway":"\#(gateway)","device":"\#(device)","seq":\#(gwseq),"person":"\#(person)"\#(extra)}}"#
    }

    static func topic(device: String = "door-1", type: String = "access.granted") -> String {
        "accessgw/\(site)/\(device)/event/\(type)"
    }

    /// Publishes events `places` (QoS 1), as the gateway's publisher would.
    func publish(_ places: ClosedRange<Int64>, device: String = "door-1") {
        for place in places { publish(topic: Self.topic(device: device), payload: Self.event(place, device: device)) }
    }

    func publish(topic: String, payload: String) {
        _ = gateways.publish(topic: topic, payload: Array(payload.utf8), properties: RequestProperties())
    }

    // MARK: The database

    func sql(_ query: String) throws -> String { try postgres.psql(database, query) }

    func count(_ query: String = "SELECT count(*) FROM events") throws -> Int { Int(try sql(query)) ?? -1 }

    func waitForRows(_ expected: Int, timeout: Duration = .seconds(30)) async throws {
        try await waitUntil("\(expected) rows in events", timeout: timeout) { (try? self.count()) == expected }
    }

    // MARK: Receipts

    struct SignedReceipt {
        var topic: String
        var payload: String
        var through: Int64
        var ranges: [[Int64]]
        var validSignature: Bool
    }

    var receipts: [SignedReceipt] {
        let publicKey = key.publicKey
        return received.withLock { $0 }.map { message in
            let json = try? JSONValue(parsing: message.payload)
            var through: Int64 = -1
            if case let .int(value)? = json?["through"] { through = value }
            var ranges: [[Int64]] = []
            if case let .array(items)? = json?["ranges"] {
                ranges = items.map { item in
                    guard case let .array(bounds) = item else { return [] }
                    return bounds.compactMap { if case let .int(v) = $0 { v } else { nil } }
                }
            }
            let valid = message.signature.flatMap { Data(base64Encoded: $0) }.map {
                publicKey.verify(signature: Array($0), of: RequestAuthority.signedBytes(topic: message.topic, payload: message.payload))
            } ?? false
            return SignedReceipt(topic: message.topic, payload: String(decoding: message.payload, as: UTF8.self),
                                 through: through, ranges: ranges, validSignature: valid)
        }
    }

    /// Waits for a receipt with `through` ≥ `atLeast` and returns it.
    @discardableResult
    func waitForReceipt(through atLeast: Int64, timeout: Duration = .seconds(30)) async throws -> SignedReceipt {
        try await eventually("a receipt through \(atLeast) (last: \(receipts.last?.payload ?? "none"))", timeout: timeout) {
            self.receipts.last { $0.through >= atLeast }
        }
    }

    func forgetReceipts() { received.withLock { $0.removeAll() } }
}
