import Foundation

/// A connected pseudo-terminal pair made by socat, standing in for an RS-485 line between a master and devices.
public final class SerialPair: @unchecked Sendable {
    // @unchecked: all properties are immutable after `start()`; `ChildProcess` is itself thread-safe.
    /// The end the devices (simulators) open.
    public let deviceEnd: String
    /// The end the master (gateway, mbpoll) opens.
    public let masterEnd: String
    private let directory: URL
    private let socat: ChildProcess

    private init(directory: URL, socat: ChildProcess) {
        self.directory = directory
        self.socat = socat
        deviceEnd = directory.appendingPathComponent("ttyDevice").path
        masterEnd = directory.appendingPathComponent("ttyMaster").path
    }

    /// Starts `socat -d -d pty,raw,echo=0,link=A pty,raw,echo=0,link=B` and waits until both links exist.
    public static func start(timeout: Duration = .seconds(10)) async throws -> SerialPair {
        let directory = try makeTemporaryDirectory("accessgw-pty")
        let device = directory.appendingPathComponent("ttyDevice").path
        let master = directory.appendingPathComponent("ttyMaster").path
        let socat = try ChildProcess(Self.executablePath("socat"), ["-d", "-d", "pty,raw,echo=0,link=\(device)",
                                               "pty,raw,echo=0,link=\(master)"])
        let pair = SerialPair(directory: directory, socat: socat)
        try await waitUntil("socat to link \(device) and \(master)", timeout: timeout) {
            guard socat.isRunning else { throw SocatExited(output: socat.text) }
            return FileManager.default.fileExists(atPath: device) && FileManager.default.fileExists(atPath: master)
        }
        return pair
    }

    /// Stops socat and removes the links.
    public func stop() {
        // SIGKILL: a child spawned from a test thread inherits that thread's blocked SIGTERM and would ignore it.
        socat.stop(signal: SIGKILL)
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }

    /// The absolute path of `name` on PATH (ChildProcess's own lookup mis-splits PATH, so resolve here).
    public static func executablePath(_ name: String) -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"]
        return dirs.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? name
    }

    /// socat exited before creating the pair.
    public struct SocatExited: Error, CustomStringConvertible {
        public var output: String
        public var description: String { "socat exited before linking the pty pair: \(output)" }
    }
}
