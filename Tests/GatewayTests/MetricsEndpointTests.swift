import Foundation
import Gateway
import Logging
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Issue 7 finding 12: idle sockets took /metrics away for ~40 s and one accept() error ended the endpoint.
@Suite("metrics HTTP endpoint under hostile clients")
struct MetricsEndpointTests {
    /// A listener on a free loopback port serving /metrics and /healthz from its own thread.
    final class Server: @unchecked Sendable {
        let listener: HTTPListener
        let thread: Thread

        init(maxConnections: Int = 32, timeout: Duration = .seconds(5)) throws {
            listener = try HTTPListener(host: "127.0.0.1", port: 0, maxConnections: maxConnections, timeout: timeout,
                                        logger: Logger(label: "metrics-test"))
            let listener = listener
            thread = Thread {
                listener.serve { path in
                    path == "/metrics" ? (200, "text/plain", Array("accessgw_up 1\n".utf8)) : (404, "text/plain", Array("no\n".utf8))
                }
            }
            thread.start()
        }

        deinit { listener.close() }
    }

    static func connect(_ port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(result == 0, "connect: \(String(cString: strerror(errno)))")
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Sends `request` on a new connection and reads the answer until the server closes.
    static func exchange(_ port: Int, _ request: [UInt8]) -> String {
        let fd = connect(port)
        defer { close(fd) }
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            answer += buffer.prefix(count)
        }
        return String(decoding: answer, as: UTF8.self)
    }

    static func get(_ port: Int, _ path: String = "/metrics") -> String {
        exchange(port, Array("GET \(path) HTTP/1.0\r\nHost: x\r\n\r\n".utf8))
    }

    @Test func idleSocketsDoNotHoldUpAScrape() throws {
        let server = try Server()
        let idle = (0..<25).map { _ in Self.connect(server.listener.port) }
        defer { idle.forEach { close($0) } }
        let answer = Self.get(server.listener.port)
        #expect(answer.hasPrefix("HTTP/1.0 200 OK\r\n"), "\(answer)")
        #expect(answer.hasSuffix("\r\n\r\naccessgw_up 1\n"))
    }

    @Test func aHundredSocketsOverTheCapNeverLockOutAScraper() throws {
        let server = try Server(maxConnections: 32)
        let idle = (0..<100).map { _ in Self.connect(server.listener.port) }
        defer { idle.forEach { close($0) } }
        for _ in 0..<3 {
            #expect(Self.get(server.listener.port).hasPrefix("HTTP/1.0 200 OK\r\n"))
        }
        #expect(Self.get(server.listener.port, "/nothing").hasPrefix("HTTP/1.0 404 Not Found\r\n"))
    }

    @Test func oversizedOrMalformedRequestsGetAClearStatusAndTheServerGoesOn() throws {
        let server = try Server()
        let huge = Array("GET /metrics HTTP/1.0\r\nX: ".utf8) + [UInt8](repeating: 65, count: 20_000) + Array("\r\n\r\n".utf8)
        #expect(Self.exchange(server.listener.port, huge).hasPrefix("HTTP/1.0 431 "))
        #expect(Self.exchange(server.listener.port, Array("POST /metrics HTTP/1.0\r\n\r\n".utf8)).hasPrefix("HTTP/1.0 405 "))
        #expect(Self.exchange(server.listener.port, Array("GET /metrics\u{1B}[2J HTTP/1.0\r\n\r\n".utf8)).hasPrefix("HTTP/1.0 400 "))
        #expect(Self.exchange(server.listener.port, Array("\r\n\r\n".utf8)).hasPrefix("HTTP/1.0 400 "))
        #expect(Self.get(server.listener.port).hasPrefix("HTTP/1.0 200 OK\r\n"))
    }

    @Test func aClientThatNeverFinishesIsClosedAtItsDeadline() throws {
        let server = try Server(timeout: .milliseconds(300))
        let slow = Self.connect(server.listener.port)
        defer { close(slow) }
        _ = Array("GET /met".utf8).withUnsafeBytes { send(slow, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var byte: UInt8 = 0
        #expect(recv(slow, &byte, 1, 0) == 0, "the server closes the unfinished request")
        #expect(Self.get(server.listener.port).hasPrefix("HTTP/1.0 200 OK\r\n"))
    }

    @Test func requestHeadsParseStrictly() {
        #expect(HTTPRequestHead.parse(Array("GET /metrics?x=1 HTTP/1.1\r\n".utf8)) == .success(.init(method: "GET", path: "/metrics")))
        #expect(HTTPRequestHead.parse(Array("GET metrics HTTP/1.1\r\n".utf8)) == .failure(.badRequest))
        #expect(HTTPRequestHead.parse(Array("DELETE / HTTP/1.0\r\n".utf8)) == .failure(.methodNotAllowed))
        #expect(HTTPRequestHead.headEnd(Array("GET / HTTP/1.0\r\n\r\nrest".utf8)) == 18)
        #expect(HTTPRequestHead.headEnd(Array("GET / HTTP/1.0\n\n".utf8)) == 16)
        #expect(HTTPRequestHead.headEnd(Array("GET / HTTP/1.0\r\n".utf8)) == nil)
    }
}
