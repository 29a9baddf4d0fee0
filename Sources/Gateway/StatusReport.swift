import AccessModel
import Foundation
import Journal

/// What `accessgw status` shows: the daemon's last status snapshot joined with the journal's pending counts.
public struct StatusReport {
    public var snapshot: [String: Any]
    public var snapshotAge: Double
    public var pendingByDevice: [String: Int]
    public var pending: Int
    /// Events the broker refused (MQTT 5 PUBACK reason >= 0x80): journalled, never sent again.
    public var refused: Int
    public var oldestPending: StoredEvent?
    public var journalBytes: Int64
    /// Command outcomes of the last 24 hours by event type (`command.written`, …).
    public var commandOutcomes: [String: Int]

    /// Reads everything from the journal database (read-only); works whether or not the daemon runs.
    public init(reader: JournalReader) throws {
        if let (value, updated) = try reader.state(key: Housekeeper.statusKey) {
            snapshot = (try? JSONSerialization.jsonObject(with: Data(value.utf8))) as? [String: Any] ?? [:]
            snapshotAge = Double(Timestamp.now.millisecondsSinceEpoch - updated.millisecondsSinceEpoch) / 1000
        } else {
            snapshot = [:]
            snapshotAge = .infinity
        }
        pendingByDevice = try reader.pendingCountByDevice()
        pending = try reader.pendingCount()
        refused = try reader.refusedCount()
        oldestPending = try reader.oldestPending()
        journalBytes = try reader.sizeInUse()
        commandOutcomes = try reader.commandOutcomes(since: Timestamp(millisecondsSinceEpoch: Timestamp.now.millisecondsSinceEpoch - 86_400_000))
    }

    /// The daemon writes its snapshot every second; older than this means it is not running. A fresh snapshot
    /// whose process is gone (killed within the last seconds) or that the daemon marked as its last (clean stop)
    /// does not count either.
    public var daemonRunning: Bool {
        guard snapshotAge < 5, snapshot["stopped"] as? Bool != true else { return false }
        guard let pid = snapshot["pid"] as? Int, pid > 0 else { return true }
        // EPERM: the process exists but belongs to another user (status run by an admin, not the service user).
        return kill(pid_t(pid), 0) == 0 || errno == EPERM
    }

    /// Devices whose last known status is not online.
    public var devicesDown: [String] {
        devices.filter { ($0["status"] as? String) != "online" }.map { $0["id"] as? String ?? "?" }
    }

    var broker: [String: Any] { snapshot["broker"] as? [String: Any] ?? [:] }

    /// `accessgw status`'s exit code, for Nagios-style checks: 0 the daemon runs, every device is online and the
    /// broker is connected; 1 something is down; 2 the daemon is not running (or never wrote a status).
    public var exitCode: Int32 {
        guard daemonRunning else { return 2 }
        return devicesDown.isEmpty && broker["connected"] as? Bool == true ? 0 : 1
    }

    var devices: [[String: Any]] { snapshot["devices"] as? [[String: Any]] ?? [] }

    public var rendered: String {
        var table = TextTable(["DEVICE", "KIND", "BUS", "ONLINE", "LAST POLL", "LAST EVENT", "ERRORS", "PENDING"])
        for device in devices {
            let id = device["id"] as? String ?? "?"
            table.add([id, device["kind"] as? String ?? "", device["bus"] as? String ?? "",
                       daemonRunning ? (device["status"] as? String ?? "unknown") : "unknown",
                       Self.ago(device["last_poll"]), Self.ago(device["last_event"]),
                       "\(device["errors"] as? Int ?? 0)", "\(pendingByDevice[id] ?? 0)"])
        }
        var gateway = "gateway \(snapshot["gateway"] as? String ?? "?")"
        if let version = snapshot["version"] as? String { gateway += " (accessgw \(version))" }
        if snapshot["read_only"] as? Bool == true { gateway += " READ-ONLY (no ack_seq, clock or command writes)" }
        if daemonRunning {
            gateway += ": broker \(broker["host"] as? String ?? "?") \((broker["connected"] as? Bool ?? false) ? "connected" : "DISCONNECTED")"
            if broker["connected"] as? Bool != true, let error = broker["last_error"] as? String { gateway += " (last error: \(error))" }
        } else {
            gateway += ": daemon NOT RUNNING (last status \(snapshotAge.isFinite ? "\(Int(snapshotAge))s ago" : "never written"))"
        }
        gateway += ", journal \(Self.size(journalBytes)), \(pending) unpublished"
        if refused > 0 { gateway += ", \(refused) REFUSED by the broker (see tail)" }
        if let oldest = oldestPending { gateway += ", oldest unpublished \(oldest.recordedTime.rfc3339)" }
        var commands = ""
        if !commandOutcomes.isEmpty {
            let order = ["command.written", "command.executed", "command.rejected", "command.expired", "command.failed"]
            let counts = commandOutcomes.sorted { (order.firstIndex(of: $0.key) ?? 9, $0.key) < (order.firstIndex(of: $1.key) ?? 9, $1.key) }
                .map { "\($0.value) \($0.key.dropFirst("command.".count))" }
            commands = "\n" + TerminalText.escaped("commands in the last 24 h: " + counts.joined(separator: ", ") + " (accessgw tail --type 'command.*')")
        }
        return table.rendered + "\n" + TerminalText.escaped(gateway) + commands + receiptLine
    }

    /// With receipts on (SPEC 4.3): what the centre has not confirmed yet, and its last receipt.
    var receiptLine: String {
        guard let receipts = snapshot["receipts"] as? [String: Any] else { return "" }
        var line = "receipts: \(receipts["unconfirmed"] as? Int ?? 0) unconfirmed"
        if let oldest = receipts["oldest_unconfirmed"] as? String { line += ", oldest unconfirmed \(oldest)" }
        if let last = receipts["last_receipt"] as? String {
            line += ", last receipt \(Self.ago(last)) (through \(receipts["through"] as? Int ?? 0))"
        } else {
            line += ", NO RECEIPT yet"
        }
        line += ", \(receipts["resent"] as? Int ?? 0) re-sent"
        let ignored = (receipts["ignored"] as? [String: Int] ?? [:]).filter { $0.value > 0 }.sorted { $0.key < $1.key }
        if !ignored.isEmpty { line += ", ignored: " + ignored.map { "\($0.value) \($0.key)" }.joined(separator: ", ") }
        return "\n" + TerminalText.escaped(line)
    }

    public var json: String {
        let object: [String: Any] = [
            "daemon_running": daemonRunning, "exit_code": Int(exitCode), "devices_down": devicesDown, "status": snapshot, "pending": pending,
            "refused": refused,
            "pending_by_device": pendingByDevice, "journal_bytes": journalBytes, "commands_24h": commandOutcomes,
            "oldest_pending": oldestPending.map { $0.recordedTime.rfc3339 } ?? NSNull(),
            "receipts": snapshot["receipts"] ?? NSNull(),
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func ago(_ value: Any?) -> String {
        guard let text = value as? String, let time = Timestamp(rfc3339: text) else { return "never" }
        let seconds = Double(Timestamp.now.millisecondsSinceEpoch - time.millisecondsSinceEpoch) / 1000
        return seconds < 60 ? String(format: "%.1fs ago", seconds) : "\(Int(seconds / 60))m ago"
    }

    public static func size(_ bytes: Int64) -> String {
        bytes < 1 << 20 ? "\(bytes / 1024) KiB" : String(format: "%.1f MiB", Double(bytes) / Double(1 << 20))
    }
}
