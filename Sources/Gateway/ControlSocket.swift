import AccessModel
import Atomics
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's local control socket, `JOURNAL.control` beside its journal (so `--config` finds it): a Unix stream
/// socket, mode 0660, through which `accessgw probe` asks the running daemon to read a device on its own bus thread,
/// between two polls, instead of opening a line the daemon owns a second time (issue 11). One JSON line each way:
///
///     → {"probe":"door-3e"}
///     ← {"ok":true,"report":"device    door-3e  profile face-door …"}   or   {"ok":false,"error":"…"}
public enum ControlSocket {
    /// Where the daemon of the journal at `journal` listens.
    public static func path(journal: String) -> String { journal + ".control" }

    /// A request is one short line; anything longer is refused.
    static let maxRequestBytes = 4096

    /// How long the daemon may take to send an answer.
    static let ioTimeoutSeconds = 5

    /// How long a connection may take to send its request line; one that sends nothing is closed then, so idle
    /// connections never keep a probe waiting.
    static let requestTimeoutMillis: Int64 = 2_000

    /// Connections served at once; one more is answered "busy" and closed.
    static let maxConnections = 16

    /// The most a probe may wait for its bus (each of its reads goes between two polls).
    public static let probeTimeoutMillis: Int64 = 10_000

    /// The daemon's answer to `request` (one JSON object).
    static func answer(_ request: [UInt8], runtime: GatewayRuntime) -> JSONValue {
        let parsed: JSONValue
        do { parsed = try JSONValue(parsing: request) } catch {
            return failure("the request is not JSON: \(error)")
        }
        guard case let .string(device)? = parsed["probe"] else {
            return failure("unknown request: expected {\"probe\": DEVICE}")
        }
        switch runtime.probe(device: device, timeoutMillis: probeTimeoutMillis) {
        case let .success(report): return .object([("ok", .bool(true)), ("report", .string(report))])
        case let .failure(failure): return Self.failure(failure.description)
        }
    }

    static func failure(_ message: String) -> JSONValue { .object([("ok", .bool(false)), ("error", .string(message))]) }

    /// Asks the daemon listening on `path`: nil when no daemon listens there (no socket, or nobody accepting).
    public static func ask(_ path: String, _ request: JSONValue, timeoutSeconds: Int = 60) throws(ControlFailure) -> JSONValue? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlFailure("cannot make a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard var address = UnixAddress(path) else { throw ControlFailure("control socket path too long: \(path)") }
        guard address.connect(fd) else {
            let code = errno
            if code == ENOENT || code == ECONNREFUSED { return nil }
            throw ControlFailure("cannot reach the daemon at \(path): \(String(cString: strerror(code)))")
        }
        setTimeout(fd, seconds: timeoutSeconds)
        guard writeAll(fd, Array((request.serialized + "\n").utf8), isSocket: true) else {
            throw ControlFailure("cannot send to the daemon at \(path): \(String(cString: strerror(errno)))")
        }
        let reply = readLine(fd, max: 16 * 1024 * 1024)
        guard !reply.isEmpty else { throw ControlFailure("the daemon at \(path) closed the connection without an answer") }
        do { return try JSONValue(parsing: reply) } catch {
            throw ControlFailure("the daemon at \(path) answered something that is not JSON: \(error)")
        }
    }

    static func setTimeout(_ fd: Int32, seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Bytes up to the first newline (not included), end of file, an error or `max` bytes.
    static func readLine(_ fd: Int32, max: Int) -> [UInt8] {
        var line: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while line.count <= max {
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            if let newline = buffer[0..<count].firstIndex(of: 10) {
                line += buffer[0..<newline]
                break
            }
            line += buffer[0..<count]
        }
        return line
    }
}

/// Why the control socket could not be used, in one sentence.
public struct ControlFailure: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A `sockaddr_un` for a filesystem path.
struct UnixAddress {
    var storage = sockaddr_un()

    init?(_ path: String) {
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: storage.sun_path) else { return nil }
        storage.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
    }

    /// Calls `body` with the address as a `sockaddr` and its length.
    mutating func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    mutating func connect(_ fd: Int32) -> Bool { withSockaddr { Glibc.connect(fd, $0, $1) == 0 } }

    mutating func bind(_ fd: Int32) -> Bool { withSockaddr { Glibc.bind(fd, $0, $1) == 0 } }
}

/// Serves the control socket on a thread of its own, one short request at a time.
public struct ControlService: Service {
    let runtime: GatewayRuntime
    let logger: Logger

    public init(runtime: GatewayRuntime, logger: Logger) {
        self.runtime = runtime
        self.logger = logger
    }

    public func run() async throws {
        let path = ControlSocket.path(journal: runtime.configuration.journalPath)
        let listener: ControlListener
        do { listener = try ControlListener(path: path) } catch {
            // Not fatal: the daemon polls on; `probe` then says the line is in use.
            logger.warning("no control socket, so probe cannot ask the daemon: \(error)")
            await waitForShutdown()
            return
        }
        logger.debug("control socket \(path)")
        let thread = Thread { [runtime, logger] in
            listener.serve { @Sendable request in
                let answer = ControlSocket.answer(request, runtime: runtime)
                if answer["ok"] == .bool(false), case let .string(error)? = answer["error"] {
                    logger.notice("control request refused: \(error)")
                }
                return answer
            }
        }
        thread.name = "control"
        thread.start()
        await waitForShutdown()
        listener.close()
    }

    private func waitForShutdown() async {
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully, !Task.isCancelled { try? await Task.sleep(for: .milliseconds(200)) }
        } onGracefulShutdown: {}
    }
}

/// The listening socket: bound at `path` (a stale file from a crashed daemon is replaced: the journal lock, taken
/// before, proves no other daemon of this journal runs), mode 0660, removed on close.
final class ControlListener: Sendable {
    let fd: Int32
    let path: String
    private let stopping = Atomic<Bool>(false)

    init(path: String) throws(ControlFailure) {
        self.path = path
        guard var address = UnixAddress(path) else {
            throw ControlFailure("\(path) is longer than a Unix socket path may be (107 bytes)")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlFailure("cannot make a socket: \(String(cString: strerror(errno)))") }
        unlink(path)
        let mask = umask(0o117)
        let bound = address.bind(fd)
        umask(mask)
        guard bound, listen(fd, 8) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw ControlFailure("cannot listen on \(path): \(String(cString: strerror(code)))")
        }
        self.fd = fd
    }

    func close() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        unlink(path)
    }

    deinit { Glibc.close(fd) }

    /// Accepts connections until `close`; each sends one request line and gets `handle`'s answer. Requests are read
    /// on this thread from every open connection at once (a connection that sends no full line within
    /// `requestTimeoutMillis` is closed) and answered on threads of their own, so neither idle connections nor a
    /// slow probe keep another request waiting.
    func serve(_ handle: @escaping @Sendable ([UInt8]) -> JSONValue) {
        var reading: [Int32: (bytes: [UInt8], since: Int64)] = [:]
        let answering = ManagedAtomic<Int>(0)
        let workers = DispatchQueue(label: "accessgw.control", attributes: .concurrent)
        defer { for connection in reading.keys { Glibc.close(connection) } }
        while !stopping.load(ordering: .acquiring) {
            let open = Array(reading.keys)
            var waiting = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
                + open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            guard poll(&waiting, nfds_t(waiting.count), 200) >= 0 else {
                usleep(10_000)
                continue
            }
            let now = monotonicMillis()
            if waiting[0].revents & Int16(POLLIN) != 0 {
                let connection = accept(fd, nil, nil)
                if connection >= 0 {
                    _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
                    _ = fcntl(connection, F_SETFL, fcntl(connection, F_GETFL) | O_NONBLOCK)
                }
                if connection < 0 {
                    usleep(50_000)  // EMFILE and friends: try again shortly, never spin
                } else if reading.count + answering.load(ordering: .relaxed) >= ControlSocket.maxConnections {
                    writeAll(connection, Array((ControlSocket.failure("busy: \(ControlSocket.maxConnections) control connections open").serialized + "\n").utf8),
                             isSocket: true)
                    Glibc.close(connection)
                } else {
                    reading[connection] = ([], now)
                }
            }
            for (index, connection) in open.enumerated() where waiting[index + 1].revents != 0 {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let count = read(connection, &buffer, buffer.count)
                if count < 0, errno == EAGAIN || errno == EINTR { continue }
                var bytes = reading[connection]!.bytes
                if count > 0 { bytes += buffer[0..<count] }
                let line = bytes.firstIndex(of: 10).map { Array(bytes[..<$0]) }
                guard line != nil || count <= 0 || bytes.count > ControlSocket.maxRequestBytes else {
                    reading[connection]!.bytes = bytes
                    continue
                }
                reading[connection] = nil
                guard count > 0 || line != nil else {
                    Glibc.close(connection)   // closed before a full line: nothing to answer
                    continue
                }
                let request = line ?? bytes
                answering.wrappingIncrement(ordering: .relaxed)
                workers.async {
                    let answer = request.count > ControlSocket.maxRequestBytes
                        ? ControlSocket.failure("request longer than \(ControlSocket.maxRequestBytes) bytes") : handle(request)
                    _ = fcntl(connection, F_SETFL, fcntl(connection, F_GETFL) & ~O_NONBLOCK)
                    ControlSocket.setTimeout(connection, seconds: ControlSocket.ioTimeoutSeconds)
                    writeAll(connection, Array((answer.serialized + "\n").utf8), isSocket: true)
                    Glibc.close(connection)
                    answering.wrappingDecrement(ordering: .relaxed)
                }
            }
            for (connection, state) in reading where now - state.since > ControlSocket.requestTimeoutMillis {
                reading[connection] = nil
                Glibc.close(connection)
            }
        }
    }
}
