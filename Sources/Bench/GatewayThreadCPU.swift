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
