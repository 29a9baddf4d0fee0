#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few blocking BSD socket and file-descriptor calls the servers (simulators, metrics) need, with errno turned
/// into errors.
public enum Socket {
    /// A listening IPv4 TCP socket on `host:port` (`socket`, `bind`, `listen`).
    public static func listen(host: String, port: UInt16) throws(SimulatorError) -> Int32 {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        let name = host == "localhost" ? "127.0.0.1" : host
        guard inet_pton(AF_INET, name, &addr.sin_addr) == 1 else {
            throw SimulatorError("TCP host \(host) is not an IPv4 address")
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw .system("socket() for \(host):\(port)", errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, Glibc.listen(fd, 64) == 0 else {
            let code = errno
            close(fd)
            throw .system("cannot listen on \(host):\(port)", errno: code)
        }
        return fd
    }

    /// A TCP port on 127.0.0.1 that nothing listens on right now, chosen by the kernel.
    public static func freeLoopbackPort() throws(SimulatorError) -> UInt16 {
        let fd = try listen(host: "127.0.0.1", port: 0)
        defer { close(fd) }
        return localPort(fd)
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port` right now.
    public static func acceptsConnections(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// The local port of a bound socket (`getsockname`).
    public static func localPort(_ fd: Int32) -> UInt16 {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return UInt16(bigEndian: addr.sin_port)
    }

    /// Writes all of `bytes` (`write`, or `send` with MSG_NOSIGNAL on sockets); false when the peer is gone.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], isSocket: Bool = true) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                isSocket ? send(fd, raw.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
                    : write(fd, raw.baseAddress! + sent, bytes.count - sent)
            }
            if n > 0 { sent += n; continue }
            if n < 0, errno == EINTR || errno == EAGAIN { continue }
            return false
        }
        return true
    }
}
