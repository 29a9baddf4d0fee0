import Logging
import Simulators
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The request line of an HTTP/1.x request head, parsed without trusting it (the metrics fuzz target's entry point).
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: String
    /// The path without its query string.
    public var path: String

    public init(method: String, path: String) {
        self.method = method
        self.path = path
    }

    /// Why a request head was refused, with the status that says so.
    public enum Refusal: Error, Sendable, Equatable {
        case badRequest, methodNotAllowed, headTooLarge

        public var status: Int {
            switch self {
            case .badRequest: 400
            case .methodNotAllowed: 405
            case .headTooLarge: 431
            }
        }
    }

    /// The most bytes a request head may have; a scraper sends a few hundred.
    public static let maxHeadBytes = 8192

    /// The end of the head (after its blank line) in `bytes`, nil while incomplete.
    public static func headEnd(_ bytes: [UInt8]) -> Int? {
        var index = 1
        while index < bytes.count {
            if bytes[index] == 10, bytes[index - 1] == 10 || index >= 2 && bytes[index - 1] == 13 && bytes[index - 2] == 10 {
                return index + 1
            }
            index += 1
        }
        return nil
    }

    /// Parses a complete head: `GET /path[?query] HTTP/1.x`, then header lines, which are not needed.
    public static func parse(_ head: some Collection<UInt8>) -> Result<HTTPRequestHead, Refusal> {
        guard head.count <= maxHeadBytes else { return .failure(.headTooLarge) }
        let line = head.prefix { $0 != 13 && $0 != 10 }
        let parts = line.split(separator: 32, omittingEmptySubsequences: false)
        guard parts.count == 3, let method = String(validating: parts[0], as: UTF8.self),
              let target = String(validating: parts[1], as: UTF8.self), target.hasPrefix("/"),
              parts[2].starts(with: Array("HTTP/1.".utf8)), parts[2].count == 8,
              line.allSatisfy({ $0 >= 32 && $0 < 127 }) else { return .failure(.badRequest) }
        guard method == "GET" || method == "HEAD" else { return .failure(.methodNotAllowed) }
        let path = String(target.prefix { $0 != "?" })
        return .success(HTTPRequestHead(method: method, path: path))
    }
}

/// A small HTTP/1.0 server for `/metrics` and `/healthz`: one thread, one `poll()` over the listening socket and
/// every connection, so an idle or slow client never holds up a scrape (issue 7, finding 12).
///
/// Why not SwiftNIO or Hummingbird: two GET routes scraped every few seconds need none of their features, and
/// Hummingbird adds 2.5-4.5 minutes to every CI build. What a server facing a network needs is here instead:
/// - at most `maxConnections` open connections; a new one over the cap closes the oldest that has not yet sent
///   its request, so idle sockets can never lock scrapers out;
/// - a per-connection deadline (`timeout`) covering the request and the response;
/// - a request-head limit (8 KiB, 431 beyond it);
/// - `accept()` failures (EMFILE when out of descriptors, ECONNABORTED, ...) are logged, rate-limited, and the
///   loop goes on after a short pause: the endpoint never ends silently.
public final class HTTPListener: @unchecked Sendable {
    // @unchecked: `fd` is immutable and `stopping` atomic; the connections live on the serving thread alone.
    private let fd: Int32
    public let port: Int
    let maxConnections: Int
    let timeoutMillis: Int64
    let logger: Logger
    private let stopping = Atomic<Bool>(false)

    struct Connection {
        var fd: Int32
        var opened: Int64
        var received: [UInt8] = []
        var response: [UInt8]?
        var sent = 0
    }

    public init(host: String, port: Int, maxConnections: Int = 32, timeout: Duration = .seconds(5), logger: Logger) throws {
        fd = try Socket.listen(host: host, port: UInt16(port))
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        self.port = Int(Socket.localPort(fd))
        self.maxConnections = maxConnections
        timeoutMillis = Int64(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        self.logger = logger
    }

    public func close() {
        stopping.store(true, ordering: .releasing)
        shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Serves until `close()`; `route` maps a path to status, content type and body.
    public func serve(_ route: (String) -> (status: Int, type: String, body: [UInt8])) {
        var connections: [Connection] = []
        var lastAcceptError: Int64 = -60_000
        var pauseAccepting = Int64(0)
        defer {
            for connection in connections { Glibc.close(connection.fd) }
            Glibc.close(fd)
        }
        while !stopping.load(ordering: .acquiring) {
            let now = Self.millis()
            var fds = [pollfd(fd: now >= pauseAccepting ? fd : -1, events: Int16(POLLIN), revents: 0)]
            for connection in connections {
                fds.append(pollfd(fd: connection.fd, events: Int16(connection.response == nil ? POLLIN : POLLOUT), revents: 0))
            }
            _ = poll(&fds, nfds_t(fds.count), 200)
            if stopping.load(ordering: .acquiring) { return }
            var closed = Set<Int32>()
            for (index, entry) in fds.enumerated().dropFirst() where entry.revents != 0 {
                if !step(&connections[index - 1], route: route) { closed.insert(connections[index - 1].fd) }
            }
            let now2 = Self.millis()
            for connection in connections where now2 - connection.opened > timeoutMillis { closed.insert(connection.fd) }
            if !closed.isEmpty {
                for fd in closed { Glibc.close(fd) }
                connections.removeAll { closed.contains($0.fd) }
            }
            if fds[0].revents != 0 || now >= pauseAccepting {
                acceptAll(&connections, now: now2, lastError: &lastAcceptError, pause: &pauseAccepting)
            }
        }
    }

    private func acceptAll(_ connections: inout [Connection], now: Int64, lastError: inout Int64, pause: inout Int64) {
        while true {
            let client = accept(fd, nil, nil)
            guard client >= 0 else {
                let code = errno
                switch code {
                case EAGAIN, EWOULDBLOCK, EINTR: return
                case EBADF, EINVAL where stopping.load(ordering: .acquiring): return
                default:
                    // Out of descriptors, a connection aborted before it was taken, ...: say so (at most once a
                    // minute), wait a little so as not to spin, and keep serving.
                    if now - lastError >= 60_000 {
                        lastError = now
                        logger.error("metrics endpoint: accept() failed: \(String(cString: strerror(code))); retrying")
                    }
                    pause = now + 100
                    return
                }
            }
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            if connections.count >= maxConnections {
                // Make room: the oldest connection still waiting for its request goes (slow or idle clients never
                // lock out a scraper); if every connection is already answering, the new one is turned away.
                if let oldest = connections.firstIndex(where: { $0.response == nil }) {
                    Glibc.close(connections[oldest].fd)
                    connections.remove(at: oldest)
                } else {
                    Glibc.close(client)
                    continue
                }
            }
            connections.append(Connection(fd: client, opened: now))
        }
    }

    /// Reads or writes what the socket is ready for; false when the connection is done or broken.
    private func step(_ connection: inout Connection, route: (String) -> (status: Int, type: String, body: [UInt8])) -> Bool {
        if connection.response == nil {
            var chunk = [UInt8](repeating: 0, count: 2048)
            let count = recv(connection.fd, &chunk, chunk.count, 0)
            if count < 0 { return errno == EAGAIN || errno == EINTR }
            if count == 0 { return false }
            connection.received += chunk.prefix(count)
            if let end = HTTPRequestHead.headEnd(connection.received) {
                connection.response = Self.response(to: connection.received.prefix(end), route: route)
            } else if connection.received.count > HTTPRequestHead.maxHeadBytes {
                connection.response = Self.response(status: 431, type: "text/plain", body: Array("request head too large\n".utf8))
            } else {
                return true
            }
        }
        guard let response = connection.response else { return true }
        let sent = response.withUnsafeBytes {
            send(connection.fd, $0.baseAddress! + connection.sent, $0.count - connection.sent, Int32(MSG_NOSIGNAL))
        }
        if sent < 0 { return errno == EAGAIN || errno == EINTR }
        connection.sent += sent
        guard connection.sent < response.count else {
            // Whatever the client still sent (the rest of a refused oversized head) is read off first: closing with
            // unread bytes resets the connection and the client could lose the answer.
            var sink = [UInt8](repeating: 0, count: 4096)
            for _ in 0..<16 where recv(connection.fd, &sink, sink.count, 0) > 0 {}
            shutdown(connection.fd, Int32(SHUT_WR))
            return false
        }
        return true
    }

    static func response(to head: some Collection<UInt8>, route: (String) -> (status: Int, type: String, body: [UInt8])) -> [UInt8] {
        switch HTTPRequestHead.parse(head) {
        case let .success(request):
            let (status, type, body) = route(request.path)
            return response(status: status, type: type, body: request.method == "HEAD" ? [] : body, length: body.count)
        case let .failure(refusal):
            return response(status: refusal.status, type: "text/plain", body: Array("\(refusal)\n".utf8))
        }
    }

    static func response(status: Int, type: String, body: [UInt8], length: Int? = nil) -> [UInt8] {
        let reasons = [200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                       431: "Request Header Fields Too Large", 503: "Service Unavailable"]
        let head = "HTTP/1.0 \(status) \(reasons[status] ?? "OK")\r\nContent-Type: \(type)\r\n"
            + "Content-Length: \(length ?? body.count)\r\nConnection: close\r\n\r\n"
        return Array(head.utf8) + body
    }

    static func millis() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
