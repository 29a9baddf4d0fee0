import AccessModel
import Foundation

/// An external program started by a test (mosquitto, socat, mbpoll), stopped when the test ends.
///
/// Its output is read by a thread of its own with blocking reads until end of file, never with
/// `FileHandle.readabilityHandler`: tearing down that handler's libdispatch read source races the descriptor's
/// close and crashes the whole test process on Linux, in `_dispatch_event_loop_drain` on the dispatch manager
/// thread ("Bad pointer dereference"; swift-corelibs-foundation #3276, swift-corelibs-libdispatch #949).
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched by the test driving it; the output is behind its lock.
    public let process = Process()
    private let output = Pipe()
    private let collected = Collected()
    private let readerDone = DispatchSemaphore(value: 0)

    /// The output read so far, shared with the reader thread (which must not keep the ChildProcess alive).
    private final class Collected: @unchecked Sendable {
        // @unchecked: `data` is only touched under `lock`.
        let lock = NSLock()
        var data = Data()
    }

    /// Starts `executable` (a name looked up on PATH, or a path) with `arguments`; stdout and stderr are collected.
    /// With `journalStream` the program finds its output pipe named in `JOURNAL_STREAM`, as a service whose output
    /// systemd connects to journald does.
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                journalStream: Bool = false) throws {
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : try Self.which(executable))
        process.arguments = arguments
        var environment = environment
        if journalStream { environment = (environment ?? [:]).merging(["JOURNAL_STREAM": outputStreamID]) { $1 } }
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.standardOutput = output
        process.standardError = output
        try process.runWithTerminationSignalsUnblocked()
        // The thread holds the pipe, so its descriptor is closed only after the last read (end of file: the child
        // and every copy of the write end are gone).
        let (pipe, collected, done) = (output, collected, readerDone)
        let reader = Thread {
            let fd = pipe.fileHandleForReading.fileDescriptor
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(fd, &buffer, buffer.count)
                if count > 0 {
                    collected.lock.withLock { collected.data.append(contentsOf: buffer[0..<count]) }
                } else if count < 0, errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            done.signal()
        }
        reader.name = "child-output"
        reader.start()
    }

    /// "device:inode" of the pipe the program writes its stdout and stderr to, as systemd puts it in
    /// `JOURNAL_STREAM` for a service whose output goes to journald.
    public var outputStreamID: String {
        var info = stat()
        fstat(output.fileHandleForWriting.fileDescriptor, &info)
        return "\(info.st_dev):\(info.st_ino)"
    }

    /// Everything the program printed so far.
    public var text: String { collected.lock.withLock { String(decoding: collected.data, as: UTF8.self) } }

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
        // Everything it printed is read once the pipe reaches end of file (bounded, in case a grandchild keeps it).
        _ = readerDone.wait(timeout: .now() + 5)
        return process.terminationStatus
    }

    deinit { stop(signal: SIGKILL) }

    /// Runs a program to completion and returns its exit status and combined output; the wait happens on a thread of
    /// its own, never on Swift's cooperative pool (two threads on a 2-core machine, shared by every test running).
    public static func run(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await onDedicatedThread { try runBlocking(executable, arguments) }
    }

    /// `run` for synchronous set-up code that has no pool thread to give back (a broker's password file, test
    /// certificates made once per process).
    public static func runBlocking(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
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
