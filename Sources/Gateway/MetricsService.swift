import Foundation
import Logging
import ServiceLifecycle
import Simulators
#if canImport(Glibc)
import Glibc
#endif

/// Serves `/metrics` (Prometheus text) and `/healthz` on `metrics.listen`.
///
/// A deliberately small HTTP/1.0 responder on one blocking thread: two GET routes scraped every few seconds do
/// not justify building an HTTP framework (SwiftNIO and Hummingbird add minutes to every CI build).
public struct MetricsService: Service {
    let endpoint: MetricsEndpoint
    let host: String
    let port: Int
    let health: @Sendable () -> Bool
    let logger: Logger

    public init(endpoint: MetricsEndpoint, host: String, port: Int, health: @escaping @Sendable () -> Bool, logger: Logger) {
        self.endpoint = endpoint
        self.host = host
        self.port = port
        self.health = health
        self.logger = logger
    }

    public func run() async throws {
        let listener = try HTTPListener(host: host, port: port)
        logger.info("metrics on http://\(host):\(listener.port)/metrics")
        let thread = Thread { [endpoint, health] in
            listener.serve { path in
                switch path {
                case "/metrics": (200, "text/plain; version=0.0.4", endpoint.exposition())
                case "/healthz": health() ? (200, "text/plain", Array("ok\n".utf8)) : (503, "text/plain", Array("stalled\n".utf8))
                default: (404, "text/plain", Array("not found\n".utf8))
                }
            }
        }
        thread.name = "metrics-http"
        thread.start()
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully, !Task.isCancelled { try? await Task.sleep(for: .milliseconds(200)) }
        } onGracefulShutdown: {
            listener.close()
        }
        listener.close()
    }
}

/// A listening TCP socket answering one GET per connection.
final class HTTPListener: @unchecked Sendable {
    // @unchecked: `fd` is immutable; `close()` only shuts it down, which ends the accept loop.
    private let fd: Int32
    let port: Int

    init(host: String, port: Int) throws {
        fd = try Socket.listen(host: host, port: UInt16(port))
        self.port = Int(Socket.localPort(fd))
    }

    func close() { shutdown(fd, Int32(SHUT_RDWR)) }

    func serve(_ route: (String) -> (status: Int, type: String, body: [UInt8])) {
        while true {
            let client = accept(fd, nil, nil)
            guard client >= 0 else {
                if errno == EINTR { continue }
                Glibc.close(fd)
                return
            }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var request = [UInt8](repeating: 0, count: 2048)
            let count = recv(client, &request, request.count, 0)
            let line = String(decoding: request.prefix(max(count, 0)).prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
            let parts = line.split(separator: " ")
            let path = parts.count >= 2 && parts[0] == "GET" ? String(parts[1].split(separator: "?").first ?? "") : ""
            let (status, type, body) = path.isEmpty ? (405, "text/plain", Array("GET only\n".utf8)) : route(path)
            let reason = [200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"][status] ?? "OK"
            let head = "HTTP/1.0 \(status) \(reason)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
            let response = Array(head.utf8) + body
            _ = response.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            Glibc.close(client)
        }
    }
}
