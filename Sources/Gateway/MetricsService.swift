import Foundation
import Logging
import ServiceLifecycle
import Simulators
#if canImport(Glibc)
import Glibc
#endif

/// Serves `/metrics` (Prometheus text) and `/healthz` on `metrics.listen`.
///
/// Served by `HTTPListener` (a small poll()-based HTTP/1.0 server; why not a framework is said there).
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
        let listener = try HTTPListener(host: host, port: port, logger: logger)
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
