import AccessModel
import DeviceProfiles
import Foundation
import MQTTPublisher
import RequestAuthority

extension CollectorConfiguration {
    /// Loads and validates `central.yaml` and the files it names; every problem is reported with file:line.
    public static func load(path: String) throws(ConfigurationError) -> CollectorConfiguration {
        try ProblemLog.validated(path: path) { parse($0, log: $1) }
    }

    /// Validates configuration text as `load` does a file; `file` names it in problems.
    public static func parse(_ text: String, file: String) throws(ConfigurationError) -> CollectorConfiguration {
        try ProblemLog.validated(text: text, file: file) { parse($0, log: $1) }
    }

    static func parse(_ root: YAMLValue, log: ProblemLog) -> CollectorConfiguration? {
        guard let top = root.mapping(log, allowed: ["collector", "mqtt", "database", "receipts", "metrics"]) else { return nil }
        let collector = top.required("collector", log)?.mapping(log, allowed: ["id", "share_group"])
        let id = collector?.required("id", log).flatMap { identifier($0, log) } ?? "collector"
        let shareGroup = collector?["share_group"].flatMap { identifier($0, log) }
        let (mqtt, prefix) = parseMQTT(top.required("mqtt", log), collectorID: id, shared: shareGroup != nil, log: log)
        let database = top.required("database", log).flatMap { parseDatabase($0, log: log) }
        let receipts = top["receipts"].flatMap { parseReceipts($0, log: log) }
        let metrics = parseMetrics(top["metrics"], log: log)
        guard let database else { return nil }
        return CollectorConfiguration(file: root.file, id: id, shareGroup: shareGroup, mqtt: mqtt, topicPrefix: prefix,
                                      database: database, receipts: receipts, metricsListen: metrics)
    }

    /// Ids become topic levels and client ids: letters, digits, `-`, `_` and `.` only.
    static func identifier(_ value: YAMLValue, _ log: ProblemLog) -> String? {
        guard let text = value.string(log) else { return nil }
        guard !text.isEmpty, text.utf8.count <= 64, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            log.report(at: value, "'\(text)' must be 1-64 letters, digits, '-', '_' and '.' (it becomes an MQTT topic level)")
            return nil
        }
        return text
    }

    /// The `mqtt:` keys of the gateway's configuration (SPEC 2) that a subscriber uses. MQTT 5 only: shared
    /// subscriptions and receipts' user properties need it. A lone collector keeps its session an hour by default,
    /// so the broker queues events while it restarts; in a share group the default is a clean session, because a
    /// broker queues a group's messages for a member that is away too (mosquitto does), where the members still
    /// running could have stored them. Either way, what the centre misses its gateways send again (SPEC 4.3).
    static func parseMQTT(_ value: YAMLValue?, collectorID: String, shared: Bool, log: ProblemLog) -> (MQTTSettings, String) {
        var settings = MQTTSettings(host: "localhost", clientID: "accessgw-collect-\(collectorID)", maxInflight: 100,
                                    reconnectDelay: .seconds(1) ... .seconds(10))
        settings.sessionExpirySeconds = shared ? 0 : 3600
        var prefix = "accessgw"
        guard let value, let fields = value.mapping(log, allowed: [
            "host", "port", "tls", "username", "password_file", "client_id", "protocol", "keepalive", "topic_prefix",
            "session_expiry", "max_inflight",
        ]) else { return (settings, prefix) }
        if let host = fields.required("host", log), let text = host.string(log) {
            if text.isEmpty || text.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control }) {
                log.report(at: host, "'\(text)' is not a host name or address")
            } else {
                settings.host = text
            }
        }
        if let tls = fields["tls"]?.mapping(log, allowed: ["ca_file", "cert_file", "key_file"]) {
            let ca = readableFile(tls.required("ca_file", log), log: log)
            let cert = readableFile(tls["cert_file"], log: log), key = readableFile(tls["key_file"], log: log)
            if (cert == nil) != (key == nil) { log.report(at: tls.owner, "cert_file and key_file go together") }
            if let ca { settings.tls = MQTTSettings.TLS(caFile: ca, certFile: cert, keyFile: key) }
        }
        settings.port = UInt16(fields["port"]?.int(log, in: 1...65535) ?? (settings.tls == nil ? 1883 : 8883))
        settings.username = fields["username"]?.string(log)
        settings.password = fields["password_file"].flatMap { secret($0, log: log) }
        if let value = fields["client_id"], let id = value.string(log) {
            if id.isEmpty || id.utf8.count > 65535 || id.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
                || id.contains(where: { "/+#".contains($0) }) {
                log.report(at: value, "client_id must be 1-65535 bytes without control characters, '/', '+' or '#'")
            } else {
                settings.clientID = id
            }
        }
        if let value = fields["protocol"], let text = value.string(log), text != "5" {
            log.report(at: value, "the collector needs MQTT 5 (shared subscriptions, signed receipts); '\(text)' is not 5")
        }
        settings.keepalive = .milliseconds(fields["keepalive"]?.milliseconds(log, in: 5000...65_535_000) ?? 30_000)
        if let value = fields["topic_prefix"], let text = value.string(log) {
            if text.isEmpty || text.contains(where: { "#+".contains($0) }) || text.hasPrefix("$")
                || text.split(separator: "/", omittingEmptySubsequences: false).contains(where: \.isEmpty) {
                log.report(at: value, "topic_prefix must be topic levels without wildcards (# +), empty levels or a leading '$'")
            } else {
                prefix = text
            }
        }
        if let value = fields["session_expiry"], let ms = value.milliseconds(log, in: 0...4_294_967_294_000) {
            settings.sessionExpirySeconds = UInt32(ms / 1000)
        }
        settings.maxInflight = Int(fields["max_inflight"]?.int(log, in: 1...65535) ?? 100)
        return (settings, prefix)
    }

    static func parseDatabase(_ value: YAMLValue, log: ProblemLog) -> Database? {
        guard let fields = value.mapping(log, allowed: ["url", "password_file", "batch_size", "batch_wait", "max_pending"]) else { return nil }
        var database: Database?
        if let urlValue = fields.required("url", log), let text = urlValue.string(log) {
            database = databaseURL(text)
            if database == nil { log.report(at: urlValue, "'\(text)' is not postgresql://USER@HOST[:PORT]/DATABASE") }
            if let components = URLComponents(string: text), components.password != nil {
                log.report(at: urlValue, "the URL carries a password: put it in password_file (secrets only from files)")
            }
        }
        let password = fields["password_file"].flatMap { secret($0, log: log) }
        let batchSize = Int(fields["batch_size"]?.int(log, in: 1...10_000) ?? 500)
        let batchWait = fields["batch_wait"]?.milliseconds(log, in: 0...10_000) ?? 50
        let maxPending = Int(fields["max_pending"]?.int(log, in: 1000...10_000_000) ?? 200_000)
        guard var database else { return nil }
        database.password = password
        database.batchSize = batchSize
        database.batchWaitMillis = batchWait
        database.maxPending = maxPending
        return database
    }

    /// `postgresql://user@host:port/name` (or `postgres://`); the port defaults to 5432.
    static func databaseURL(_ text: String) -> Database? {
        guard let components = URLComponents(string: text), ["postgresql", "postgres"].contains(components.scheme ?? ""),
              let user = components.user, !user.isEmpty, let host = components.host, !host.isEmpty,
              components.query == nil, components.fragment == nil else { return nil }
        let name = String(components.path.dropFirst())
        guard !name.isEmpty, !name.contains("/") else { return nil }
        return Database(host: host, port: components.port ?? 5432, user: user, password: nil, name: name)
    }

    static func parseReceipts(_ value: YAMLValue, log: ProblemLog) -> Receipts? {
        guard let fields = value.mapping(log, allowed: ["issuer", "key_file"]) else { return nil }
        let issuerValue = fields.required("issuer", log), keyValue = fields.required("key_file", log)
        let issuer = issuerValue?.string(log)
        if let issuerValue, let issuer, !RequestEnvelope.isRequestID(issuer) {
            log.report(at: issuerValue, "issuer '\(issuer)' must be 1-64 characters of A-Z a-z 0-9 . _ : -")
        }
        guard let issuer, RequestEnvelope.isRequestID(issuer), let keyValue, let path = keyValue.string(log) else { return nil }
        guard let pem = secret(keyValue, log: log) else { return nil }
        do { _ = try Ed25519PrivateKey(pem: pem) } catch {
            log.report(at: keyValue, "\(path) is not an Ed25519 private key (PEM, from accessgw keygen): \(error.message)")
            return nil
        }
        return Receipts(issuer: issuer, keyFile: path, keyPEM: pem)
    }

    static func parseMetrics(_ value: YAMLValue?, log: ProblemLog) -> (host: String, port: Int)? {
        let fallback = ("127.0.0.1", 9465)
        guard let value, let fields = value.mapping(log, allowed: ["listen"]) else { return fallback }
        guard let listenValue = fields["listen"], let listen = listenValue.string(log) else { return fallback }
        if listen == "off" { return nil }
        var address = in_addr()
        guard let endpoint = HostPort(listen), endpoint.port > 0,
              endpoint.host == "localhost" || inet_pton(AF_INET, endpoint.host, &address) == 1 else {
            log.report(at: listenValue, "'\(listen)' is not IPV4-ADDRESS:PORT (e.g. 127.0.0.1:9465) or off")
            return nil
        }
        return (endpoint.host, Int(endpoint.port))
    }

    /// The trimmed text of a secret file; an unreadable file, or one that is not text, is a problem naming it.
    static func secret(_ value: YAMLValue, log: ProblemLog) -> String? {
        guard let path = value.string(log) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            log.report(at: value, "cannot read \(path)")
            return nil
        }
        guard let text = String(data: data, encoding: .utf8) else {
            log.report(at: value, "\(path) is not UTF-8 text")
            return nil
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func readableFile(_ value: YAMLValue?, log: ProblemLog) -> String? {
        guard let value, let path = value.string(log) else { return nil }
        if !FileManager.default.isReadableFile(atPath: path) { log.report(at: value, "cannot read \(path)") }
        return path
    }
}

extension CollectorConfiguration {
    /// Whether the YAML file at `path` has a top-level `collector` key (and no `gateway`): what `accessgw check`
    /// looks at to validate a `central.yaml` as the collector's configuration.
    public static func isCollectorFile(path: String) -> Bool {
        let quiet = ProblemLog()
        guard let top = YAMLValue.load(path: path, log: quiet)?.mapping(quiet) else { return false }
        return top["collector"] != nil && top["gateway"] == nil
    }
}

extension CollectorConfiguration {
    /// The database settings of a `postgresql://USER@HOST[:PORT]/NAME` URL with the defaults of `database:`
    /// (tests and tools that open the collector's database directly).
    public static func databaseSettings(url: String, password: String? = nil) -> Database? {
        guard var database = databaseURL(url) else { return nil }
        database.password = password
        return database
    }
}
