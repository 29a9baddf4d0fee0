import Foundation

/// CPU time of this process's gateway threads (named `gw-…`: the bus pollers, the journal writer, the publisher,
/// libmosquitto's network thread, housekeeping), read from /proc/self/task/*/schedstat (nanoseconds on CPU).
/// The bench's simulators, subscriber and broker are not counted: that is the gateway's own cost per event.
struct GatewayThreadCPU {
    /// Nanoseconds on CPU by thread name (threads of the same name summed).
    var nanosByName: [String: UInt64] = [:]

    var totalNanos: UInt64 { nanosByName.values.reduce(0, +) }

    static func sample(prefix: String = "gw-") -> GatewayThreadCPU {
        var sample = GatewayThreadCPU()
        let tasks = "/proc/self/task"
        guard let ids = try? FileManager.default.contentsOfDirectory(atPath: tasks) else { return sample }
        for id in ids {
            guard let comm = try? String(contentsOfFile: "\(tasks)/\(id)/comm", encoding: .utf8) else { continue }
            let name = comm.trimmingCharacters(in: .whitespacesAndNewlines)
            guard name.hasPrefix(prefix),
                  let stat = try? String(contentsOfFile: "\(tasks)/\(id)/schedstat", encoding: .utf8),
                  let first = stat.split(separator: " ").first, let nanos = UInt64(first) else { continue }
            // Bus pollers are summed as one stage.
            let stage = name.hasPrefix("gw-poll-") ? "gw-poll-*" : name
            sample.nanosByName[stage, default: 0] += nanos
        }
        return sample
    }

    /// CPU nanoseconds per thread name spent between `earlier` and `self`.
    func since(_ earlier: GatewayThreadCPU) -> GatewayThreadCPU {
        var delta = GatewayThreadCPU()
        for (name, nanos) in nanosByName { delta.nanosByName[name] = nanos - min(nanos, earlier.nanosByName[name] ?? 0) }
        return delta
    }
}

/// CPU time of the whole bench (this process: gateway, simulators, subscriber, raw publisher) plus the broker, for
/// the CPU-bound estimate of the ratio: on a machine shared with other work the wall-clock ratio swings with the
/// neighbours' load, while CPU per message is what decides the rate when the bench has both cores to itself.
struct BenchCPU {
    var selfMicros: Int64
    var brokerMicros: Int64

    var totalMicros: Int64 { selfMicros + brokerMicros }

    static func sample(brokerPID: Int32) -> BenchCPU {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let own = Int64(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000_000
            + Int64(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
        return BenchCPU(selfMicros: own, brokerMicros: processMicros(brokerPID))
    }

    /// utime + stime of another process from /proc/PID/stat (clock ticks, 100 per second).
    static func processMicros(_ pid: Int32) -> Int64 {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After "pid (comm)": state is field 3, utime 14 and stime 15, so indexes 11 and 12 here.
        guard fields.count > 12, let user = Int64(fields[11]), let system = Int64(fields[12]) else { return 0 }
        let ticks = Int64(sysconf(Int32(_SC_CLK_TCK)))
        return (user + system) * 1_000_000 / max(1, ticks)
    }

    static func - (later: BenchCPU, earlier: BenchCPU) -> BenchCPU {
        BenchCPU(selfMicros: later.selfMicros - earlier.selfMicros, brokerMicros: later.brokerMicros - earlier.brokerMicros)
    }
}
