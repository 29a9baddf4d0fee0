import AccessModel
import Foundation

/// What each series means (`# HELP`), the build information and the standard `process_*` series, added to the
/// exposition swift-prometheus renders (swift-metrics has no place for help texts).
enum MetricsCatalogue {
    /// Every gateway series with its help text; a series missing here is a test failure, not a silent omission.
    static let help: [String: String] = [
        "accessgw_build_info": "Always 1; the labels say which accessgw build runs.",
        "accessgw_events_total": "Events journalled, by device and CloudEvents type.",
        "accessgw_modbus_requests_total": "Modbus requests on a bus, by result (ok, timeout, exception, bad_reply, connection, error).",
        "accessgw_modbus_request_duration_seconds": "Duration of Modbus requests on a bus, including the line's silence.",
        "accessgw_modbus_discarded_bytes_total": "Stray bytes found on a bus before a request and dropped.",
        "accessgw_modbus_late_replies_total": "RTU replies that came after their request had timed out, discarded while the line fell silent.",
        "accessgw_commands_total": "Downlink commands by outcome status and reason.",
        "accessgw_command_latency_seconds": "Time from a command's arrival to its outcome.",
        "accessgw_command_requests_dropped_total": "Command requests dropped by the intake (over its bound).",
        "accessgw_command_rejections_unpublished_total": "Command rejections not published (rate-limited).",
        "accessgw_replies_withheld_total": "Replies not sent, by request kind (command, replay) and reason: the request was not authenticated, or its Response Topic was outside {prefix}/{site}/reply/{issuer}/.",
        "accessgw_replay_requests_dropped_total": "Replay requests dropped before queueing, by reason: too_large (over 16 KiB) or backlog (4 already waiting).",
        "accessgw_bus_busy_seconds_total": "Seconds a bus spent in requests; its rate is the bus utilisation.",
        "accessgw_device_up": "1 while the device answers its polls, 0 after 3 failed polls.",
        "accessgw_device_polls_total": "Polls of a device, by result (ok, timeout, exception, bad_reply, connection, error).",
        "accessgw_device_last_event_timestamp_seconds": "Unix time the device's newest event was read (a device that answers polls but stopped logging shows here).",
        "accessgw_device_events_lost_total": "Records the device overwrote before the gateway read them (reported as gateway.events_lost).",
        "accessgw_device_ack_with_read_fallbacks_total": "Times a device set to ack with Modbus function 23 (ack_with_read) fell back to function 16 then 03.",
        "accessgw_device_clock_offset_seconds": "Device clock minus gateway clock at the last clock check.",
        "accessgw_bad_records_total": "Records or headers that could not be read or decoded, by stage (read, decode) and device.",
        "accessgw_journal_pending_events": "Journalled events the broker has not acknowledged yet.",
        "accessgw_journal_oldest_pending_age_seconds": "Age of the oldest unacknowledged event (0 when none).",
        "accessgw_journal_bytes": "Bytes of the journal database in use.",
        "accessgw_journal_unpublished_dropped_total": "Unpublished events deleted because the journal exceeded max_journal_size.",
        "accessgw_journal_commit_failures_total": "Journal commits that failed and were retried.",
        "accessgw_mqtt_connected": "1 while connected to the broker.",
        "accessgw_mqtt_connection_failures_total": "Refused, failed or lost broker connections.",
        "accessgw_mqtt_rejected_total": "Publications the broker answered with a failure reason code.",
        "accessgw_mqtt_refused_retries_total": "Events the broker had refused, sent again with backoff, by result: delivered (taken this time) or refused (again).",
        "accessgw_mqtt_published_total": "Journalled events handed to the broker.",
        "accessgw_mqtt_acknowledged_total": "Journalled events the broker acknowledged (PUBACK).",
        "accessgw_events_unconfirmed": "Events the broker acknowledged that no receipt from the centre confirms yet (receipts on, SPEC 4.3).",
        "accessgw_events_oldest_unconfirmed_age_seconds": "Age (since the gateway recorded it) of the oldest published event no receipt confirms (0 when none).",
        "accessgw_receipts_applied_total": "Receipts from the centre applied (signed, permitted, this epoch, not stale).",
        "accessgw_receipts_ignored_total": "Receipts ignored, by reason (unsigned, bad_signature, not_permitted, other_epoch, stale, malformed).",
        "accessgw_events_unconfirmed_expired_total": "Events retention deleted before a receipt confirmed them (reported as gateway.events_unconfirmed_expired).",
        "accessgw_events_resent_total": "Unconfirmed events published again receipts.resend_after after their last publication.",
        // accessgw collect (SPEC 4.4)
        "accessgw_collect_events_stored_total": "Events the collector stored for the first time.",
        "accessgw_collect_duplicates_total": "Events received again with the same payload (or after their erasure): nothing changed.",
        "accessgw_collect_conflicts_total": "Events received with an id already stored under another payload: the first kept.",
        "accessgw_collect_erased_total": "Stored events deleted by gateway.erased.",
        "accessgw_collect_rejected_total": "Messages not stored because they are not valid events, states or statuses, by reason.",
        "accessgw_collect_refused_total": "Events the database refused one by one.",
        "accessgw_collect_dropped_total": "Events dropped because max_pending were waiting for the database (their gateways send them again).",
        "accessgw_collect_batch_duration_seconds": "Time to commit one batch.",
        "accessgw_collect_receipts_published_total": "Signed receipts published.",
        "accessgw_collect_database_failures_total": "Batches the database could not take (unreachable, restarting), retried.",
        "accessgw_collect_database_up": "1 while the database takes batches.",
        "accessgw_collect_mqtt_connected": "1 while connected to the central broker.",
        "accessgw_collect_pending_events": "Events received and not yet committed.",
        "accessgw_collect_lag_seconds": "Per gateway: seconds from the newest stored event's recordedtime to its commit.",
        "accessgw_publisher_events_total": "Journalled events handed to the broker, by source: memory (handed over by the journal writer after its commit) or journal (read back).",
    ]

    /// Inserts `# HELP` before each `# TYPE` line of `text` whose series has a help text.
    static func withHelp(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count + 4096)
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), let name = line.split(separator: " ").dropFirst(2).first, let help = help[String(name)] {
                out += "# HELP \(name) \(help)\n"
            }
            out += line
            out += "\n"
        }
        if out.hasSuffix("\n\n") { out.removeLast() }
        return out
    }

    /// `accessgw_build_info{version,arch} 1`.
    static var buildInfo: String {
        """
        # HELP accessgw_build_info \(help["accessgw_build_info"]!)
        # TYPE accessgw_build_info gauge
        accessgw_build_info{version="\(BuildInfo.version)",arch="\(BuildInfo.architecture)"} 1

        """
    }

    /// The standard process series of Prometheus client libraries, read from /proc/self.
    static var processMetrics: String {
        var text = ""
        func add(_ name: String, _ type: String, _ help: String, _ value: Double) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = Double(sysconf(Int32(_SC_PAGESIZE)))
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            // Fields after the command name, from field 3 (state): utime 14, stime 15, starttime 22, vsize 23, rss 24.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            func field(_ number: Int) -> Double { fields.count > number - 3 ? Double(fields[number - 3]) ?? 0 : 0 }
            add("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", (field(14) + field(15)) / ticks)
            add("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", field(23))
            add("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", field(24) * page)
            if let uptime = (try? String(contentsOfFile: "/proc/uptime", encoding: .utf8))?.split(separator: " ").first.flatMap({ Double($0) }) {
                let bootTime = Date().timeIntervalSince1970 - uptime
                add("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
                    (bootTime + field(22) / ticks).rounded())
            }
        }
        if let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            add("process_open_fds", "gauge", "Number of open file descriptors.", Double(fds.count))
        }
        var limit = rlimit()
        if getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 {
            add("process_max_fds", "gauge", "Maximum number of open file descriptors.", Double(limit.rlim_cur))
        }
        return text
    }
}

#if canImport(Glibc)
import Glibc
private let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
#else
private let RLIMIT_NOFILE_VALUE = RLIMIT_NOFILE
#endif
