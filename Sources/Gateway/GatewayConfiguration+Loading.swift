import AccessModel
import BusPolling
import DeviceProfiles
import Foundation
import ModbusTransport

extension GatewayConfiguration {
    /// Loads and validates the file, its profiles and its secret files; every problem is reported with file:line.
    public static func load(path: String) throws(ConfigurationError) -> GatewayConfiguration {
        try ProblemLog.validated(path: path) { parse($0, log: $1) }
    }

    /// Validates configuration text as `load` does a file (the fuzz target's entry point); `file` names it in problems.
    public static func parse(_ text: String, file: String) throws(ConfigurationError) -> GatewayConfiguration {
        try ProblemLog.validated(text: text, file: file) { parse($0, log: $1) }
    }

    static func parse(_ root: YAMLValue, log: ProblemLog) -> GatewayConfiguration? {
        guard let top = root.mapping(log, allowed: ["gateway", "mqtt", "metrics", "buses", "devices", "profile_dirs", "commands", "replay", "receipts"]) else { return nil }
        guard let gateway = top.required("gateway", log)?.mapping(log, allowed: ["id", "site", "journal", "retention", "max_journal_size", "privacy", "host_clock"])
        else { return nil }
        let gatewayID = gateway.required("id", log).flatMap { identifier($0, log) } ?? "gw"
        let site = gateway.required("site", log).flatMap { identifier($0, log) } ?? "site"
        var maxBytes: Int64 = 2 << 30
        if let size = gateway["max_journal_size"], let text = size.string(log) {
            if let bytes = ByteSizeText.bytes(text), (1 << 20...1 << 50).contains(bytes) { maxBytes = bytes } else {
                log.report(at: size, "'\(text)' is not a size from 1MiB to 1024TiB (examples: 500MiB, 2GiB)")
            }
        }
        // profile_dirs come first (a site's copy of a profile wins) and add to the defaults rather than replace them.
        let defaults = ProfileLibrary.defaultDirectories
        let extra = top["profile_dirs"]?.sequence(log)?.compactMap { $0.string(log) } ?? []
        let profileDirectories = extra + defaults.filter { !extra.contains($0) }
        let library = ProfileLibrary(directories: profileDirectories)
        let buses = top.required("buses", log)?.sequence(log)?.compactMap { parseBus($0, log: log) } ?? []
        for duplicate in duplicates(buses.map(\.id)) { log.report(at: top["buses"]!, "bus id '\(duplicate)' is used twice") }
        let parsed = top.required("devices", log)?.sequence(log)?.compactMap {
            parseDevice($0, buses: buses, library: library, log: log)
        } ?? []
        checkUniqueness(parsed, log: log)
        let devices = parsed.map(\.device)
        let mqtt = parseMQTT(top["mqtt"], site: site, gatewayID: gatewayID, log: log)
        var configuration = GatewayConfiguration(
            file: root.file, gatewayID: gatewayID, site: site,
            journalPath: gateway["journal"]?.string(log) ?? defaultJournalPath,
            retentionMillis: gateway["retention"]?.milliseconds(log, in: 60_000...3650 * 86_400_000) ?? 7 * 86_400_000, maxJournalBytes: maxBytes,
            privacy: gateway["privacy"].map { parsePrivacy($0, log: log) } ?? Privacy(),
            mqtt: mqtt,
            metricsListen: parseMetrics(top["metrics"], log: log),
            buses: buses, devices: devices, profileDirectories: profileDirectories)
        configuration.hostClock = gateway["host_clock"]?.choice(log) ?? .kernel
        configuration.commands = parseCommands(top["commands"], mqtt: mqtt, devices: devices, log: log)
        configuration.replay = parseReplay(top["replay"], commands: configuration.commands, log: log)
        configuration.receipts = parseReceipts(top["receipts"], gatewayID: gatewayID, mqtt: mqtt, commands: configuration.commands, log: log)
        return configuration
    }

    /// Ids become topic levels and CloudEvents ids: letters, digits, `-`, `_` and `.` only.
    static func identifier(_ value: YAMLValue, _ log: ProblemLog) -> String? {
        guard let text = value.string(log) else { return nil }
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            log.report(at: value, "'\(text)' may only hold letters, digits, '-', '_' and '.' (it becomes an MQTT topic level)")
            return nil
        }
        return text
    }

    static func duplicates(_ ids: [String]) -> [String] {
        var seen = Set<String>(), repeated: [String] = []
        for id in ids where !seen.insert(id).inserted && !repeated.contains(id) { repeated.append(id) }
        return repeated
    }

    static func checkUniqueness(_ devices: [(device: Device, node: YAMLValue)], log: ProblemLog) {
        var ids: [String: Int] = [:]
        var units: [String: String] = [:]
        for (device, node) in devices {
            if let first = ids[device.id] {
                log.report(at: node, "device id '\(device.id)' is already used by devices[\(first)]")
            } else {
                ids[device.id] = ids.count
            }
            let key = "\(device.bus)/\(device.unit)"
            if let other = units[key] {
                log.report(at: node, "unit \(device.unit) on bus \(device.bus) is already taken by device \(other)")
            } else {
                units[key] = device.id
            }
        }
    }

    /// The text of a secret file, trimmed; an unreadable file, or one that is not text, is a problem naming it.
    static func secret(_ value: YAMLValue, log: ProblemLog) -> String? {
        guard let path = value.string(log) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            log.report(at: value, "cannot read \(path)")
            return nil
        }
        guard let text = String(data: data, encoding: .utf8) else {
            log.report(at: value, "\(path) is not UTF-8 text: use a text secret")
            return nil
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A key file's bytes: the trimmed text of a text file (`openssl rand -hex 32`), or the file's bytes as they
    /// are when it is not UTF-8 text (`head -c 32 /dev/urandom`).
    static func keyBytes(_ value: YAMLValue, log: ProblemLog) -> [UInt8]? {
        guard let path = value.string(log) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            log.report(at: value, "cannot read \(path)")
            return nil
        }
        guard let text = String(data: data, encoding: .utf8) else { return Array(data) }
        return Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
    }

    static func readableFile(_ value: YAMLValue?, log: ProblemLog) -> String? {
        guard let value, let path = value.string(log) else { return nil }
        if !FileManager.default.isReadableFile(atPath: path) { log.report(at: value, "cannot read \(path)") }
        return path
    }
}


extension GatewayConfiguration {
    public static let defaultJournalPath = "/var/lib/accessgw/journal.db"

    /// The journal a configuration file names, for `tail`, `status` and `backup`: these must work when the rest of
    /// the file is broken or a secret is unreadable. Returns the problems of the full load alongside.
    public static func journalPath(configFile: String) -> (path: String, problems: ConfigurationError?) {
        do {
            return (try load(path: configFile).journalPath, nil)
        } catch {
            let quiet = ProblemLog()
            let journal = YAMLValue.load(path: configFile, log: quiet)?.mapping(quiet)?["gateway"]?.mapping(quiet)?["journal"]?.string(quiet)
            return (journal ?? defaultJournalPath, error)
        }
    }
}
