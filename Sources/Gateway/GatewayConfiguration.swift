import AccessModel
import BusPolling
import DeviceProfiles
import Foundation
import ModbusTransport

/// The daemon's configuration file (SPEC section 2), validated.
public struct GatewayConfiguration: Sendable {
    public struct Privacy: Sendable, Equatable {
        public enum PersonIDs: String, Sendable, CaseIterable { case plain, pseudonymise }
        public enum Plates: String, Sendable, CaseIterable { case plain, mask, pseudonymise }
        public var personIDs: PersonIDs = .plain
        public var plates: Plates = .plain
        /// The HMAC key read from `key_file`, when pseudonymising.
        public var key: [UInt8] = []
        /// Where the key came from, for `check --online` (readable by the service user?).
        public var keyFile: String?
        /// Pseudonyms carry it as a prefix (`k1:…`), so a rotated key (version 2) never yields values that could be
        /// mistaken for the old key's, and `forget` knows which key made a value.
        public var keyVersion = 1

        public init() {}
    }

    public struct MQTT: Sendable, Equatable {
        public enum ProtocolVersion: String, Sendable, CaseIterable {
            case v5 = "5"
            case v311 = "3.1.1"
        }

        public var host = "localhost"
        public var port = 1883
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        public var username: String?
        /// Read from `password_file`; never logged.
        public var password: String?
        public var passwordFile: String?
        public var clientID: String
        public var protocolVersion: ProtocolVersion = .v5
        public var qos = 1
        public var keepaliveSeconds = 30
        public var topicPrefix = "accessgw"
        public var maxInflight = 100
        /// MQTT 5 session expiry in seconds (0: a clean session, the default).
        public var sessionExpirySeconds: UInt32 = 0
    }

    public struct Device: Sendable {
        public var id: String
        public var profile: DeviceProfile
        public var bus: String
        public var unit: UInt8
        public var pollMillis: Int64
        public var statePollMillis: Int64
        public var timeSync: Bool
        public var location: [(String, String)]
        /// The bytes of the profile file as loaded, so a reload notices an edited profile.
        public var profileSource = Data()
    }

    public var file: String
    public var gatewayID: String
    public var site: String
    public var journalPath: String
    public var retentionMillis: Int64
    public var maxJournalBytes: Int64
    public var privacy: Privacy
    public var mqtt: MQTT
    /// `host:port` for Prometheus metrics, or nil when `off`.
    public var metricsListen: (host: String, port: Int)?
    public var buses: [BusConfiguration]
    public var devices: [Device]
    public var profileDirectories: [String]
    public var commands = Commands()
    public var replay = Replay()
    public var receipts = Receipts()
    /// Whether device clocks are set only while the kernel says the host clock is synchronised (`kernel`), or
    /// always (`trusted`: a clock disciplined by something the kernel does not see, such as a GPS without ntpd).
    public var hostClock = HostClockSource.kernel

    public enum HostClockSource: String, Sendable, CaseIterable { case kernel, trusted }

    /// `run --read-only` (not a setting of the file): poll and publish, but write nothing to the devices (no ack_seq,
    /// no clock, no commands), for trying accessgw beside a vendor platform. Every event says so (`read_only`).
    public private(set) var readOnly = false

    /// Turns on read-only for the gateway and each of its buses (also for a configuration reloaded while it runs).
    public mutating func makeReadOnly() {
        readOnly = true
        for index in buses.indices { buses[index].readOnly = true }
    }

    public static let defaultPath = "/etc/accessgw/gateway.yaml"

    /// Topic of the gateway's retained status and Last Will.
    public var statusTopic: String { "\(mqtt.topicPrefix)/\(site)/gateway/\(gatewayID)/status" }

    /// Where a device's events come from, for the CloudEvents `source` and `data`.
    public func source(of device: Device) -> EventSource {
        EventSource(site: site, gateway: gatewayID, device: device.id, kind: device.profile.kind, location: device.location,
                    readOnly: readOnly)
    }

    /// The source of the gateway's own events.
    public var gatewaySource: EventSource {
        EventSource(site: site, gateway: gatewayID, device: gatewayID, kind: "gateway", readOnly: readOnly)
    }
}
