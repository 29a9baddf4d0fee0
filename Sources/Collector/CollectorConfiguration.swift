import AccessModel
import MQTTPublisher

/// `central.yaml`, the collector's configuration (SPEC 4.4), resolved: secrets read from their files, durations
/// turned into numbers. Loaded by `load(path:)`; every problem is reported with file:line and exits 78.
public struct CollectorConfiguration: Sendable {
    public static let defaultPath = "/etc/accessgw/central.yaml"

    public var file: String
    /// `collector.id`: names this collector in logs and in its MQTT client id.
    public var id: String
    /// `collector.share_group`: with one, events come through `$share/{group}/…`, split among the group's collectors.
    public var shareGroup: String?
    public var mqtt: MQTTSettings
    public var topicPrefix: String
    public var database: Database
    public var receipts: Receipts?
    public var metricsListen: (host: String, port: Int)?

    /// `database:`. The password comes from `password_file` only; the URL must not carry one.
    public struct Database: Sendable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var user: String
        public var password: String?
        public var name: String
        /// Events per transaction at most.
        public var batchSize: Int = 500
        /// How long a batch waits for more events after its first one.
        public var batchWaitMillis: Int64 = 50
        /// Events received but not yet committed, at most; beyond it events are dropped and counted (no receipt
        /// covers them, so their gateways send them again).
        public var maxPending: Int = 200_000

        /// `postgresql://user@host:port/name`, never with the password.
        public var description: String { "postgresql://\(user)@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(name)" }
    }

    /// `receipts:`: the issuer (a `receipt` permission in the gateways' `commands.issuers`) and its private key.
    public struct Receipts: Sendable {
        public var issuer: String
        public var keyFile: String
        /// The PEM text of the private key, read at load time.
        public var keyPEM: String
    }

    /// The subscriptions of SPEC 4.4: events (through the share group if any), states, statuses.
    public var subscriptions: [String] {
        let events = "\(topicPrefix)/+/+/event/#"
        return [shareGroup.map { "$share/\($0)/\(events)" } ?? events, "\(topicPrefix)/+/+/state", "\(topicPrefix)/+/gateway/+/status"]
    }

    /// One line for `check` and the start-up log.
    public var summary: String {
        var parts = ["collector \(id)", shareGroup.map { "share group \($0)" } ?? "no share group", "broker \(mqtt.broker)",
                     "topic prefix \(topicPrefix)", "database \(database)"]
        parts.append(receipts.map { "receipts signed as \($0.issuer)" } ?? "no receipts")
        parts.append(metricsListen.map { "metrics on \($0.host):\($0.port)" } ?? "metrics off")
        return parts.joined(separator: ", ")
    }
}
