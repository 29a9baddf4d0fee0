import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private mosquitto for one benchmark run: `/usr/sbin/mosquitto -c` with a temporary configuration on a free
/// loopback port, stopped (SIGTERM) at the end of the run.
final class BenchBroker {
    let port: UInt16
    let directory: URL
    private let process: Process

    init(directory: URL) throws(BenchError) {
        self.directory = directory
        port = freeLoopbackPort()
        let config = directory.appendingPathComponent("mosquitto.conf")
        // Unlimited queues: a subscriber that falls behind must slow the run down, not lose messages.
        let lines = ["listener \(port) 127.0.0.1", "allow_anonymous true", "persistence false",
                     "max_queued_messages 0", "log_dest file \(directory.path)/mosquitto.log", "log_type error",
                     "log_type warning"]
        do {
            try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: directory.path)
            try (lines.joined(separator: "\n") + "\n").write(to: config, atomically: true, encoding: .utf8)
        } catch { throw BenchError("cannot write \(config.path): \(error)") }
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/mosquitto")
        process.arguments = ["-c", config.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { throw BenchError("cannot start /usr/sbin/mosquitto: \(error)") }
        let deadline = Date().addingTimeInterval(10)
        while !acceptsConnections(port: port) {
            guard process.isRunning, Date() < deadline else {
                stop()
                throw BenchError("mosquitto did not listen on 127.0.0.1:\(port)")
            }
            usleep(20_000)
        }
    }

    var pid: Int32 { process.processIdentifier }

    /// SIGKILL: the broker keeps nothing worth saving, and a child spawned from a thread that blocks SIGTERM
    /// (Foundation's `Process` inherits the mask) would never see a SIGTERM.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now, chosen by the kernel.
func freeLoopbackPort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = loopback(port: 0)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 ? getsockname(fd, pointer, &length) : -1
        }
    }
    return UInt16(bigEndian: addr.sin_port)
}

func acceptsConnections(port: UInt16) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var addr = loopback(port: port)
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

private func loopback(port: UInt16) -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return addr
}

/// A benchmark that could not run, in one sentence.
public struct BenchError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Wall-clock milliseconds (CLOCK_REALTIME), the clock the simulated devices stamp their events with.
func wallMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Monotonic seconds as a Double, for rates.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// The value at quantile `q` (0...1) of `sorted`, nearest rank.
func quantile(_ sorted: [Int64], _ q: Double) -> Int64? {
    guard !sorted.isEmpty else { return nil }
    let rank = Int((q * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}
