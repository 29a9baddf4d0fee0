import AccessModel
import Foundation

/// An external program started by a test (mosquitto, socat, mbpoll), stopped when the test ends.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` and the pipes are only touched under `lock` or after the process exited.
    public let process = Process()
    private let output = Pipe()
    private let lock = NSLock()
    private var collected = Data()

    /// Starts `executable` (a name looked up on PATH, or a path) with `arguments`; stdout and stderr are collected.
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : try Self.which(executable))
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.standardOutput = output
        process.standardError = output
        output.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let chunk = handle.availableData
            guard let self, !chunk.isEmpty else { return }
            self.lock.withLock { self.collected.append(chunk) }
        }
        try process.runWithTerminationSignalsUnblocked()
    }

    /// Everything the program printed so far.
    public var text: String { lock.withLock { String(decoding: collected, as: UTF8.self) } }

    public var isRunning: Bool { process.isRunning }

    /// Sends `signal` and waits for the program to exit; one that ignores it is killed after `grace`.
    /// (Children inherit the test runner's signal mask, in which SIGTERM may be blocked.)
    public func stop(signal: Int32 = SIGTERM, grace: Duration = .seconds(5)) {
        if process.isRunning { kill(process.processIdentifier, signal) }
        let deadline = ContinuousClock.now + grace
        while process.isRunning, ContinuousClock.now < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Waits for the program to exit on its own and returns its status.
    public func wait() -> Int32 {
        process.waitUntilExit()
        output.fileHandleForReading.readabilityHandler = nil
        let rest = output.fileHandleForReading.readDataToEndOfFile()
        lock.withLock { collected.append(rest) }
        return process.terminationStatus
    }

    deinit { stop(signal: SIGKILL) }

    /// Runs a program to completion and returns its exit status and combined output.
    public static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let child = try ChildProcess(executable, arguments)
        let status = child.wait()
        return (status, child.text)
    }

    public struct NotFound: Error, CustomStringConvertible {
        public var name: String
        public var description: String { "\(name) is not installed (apt-get install it; .ci/run does)" }
    }

    static func which(_ name: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"] {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw NotFound(name: name)
    }
}
