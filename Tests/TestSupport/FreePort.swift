import Glibc
import Simulators
import Synchronization

/// Ports already handed out in this test process: never handed out twice.
private let handedOut = Mutex<Set<UInt16>>([])

/// A TCP port on 127.0.0.1 that nothing listens on right now, for a server a test starts a moment later.
///
/// Chosen at random below Linux's ephemeral range (32768-60999), not by the kernel: a kernel-chosen port comes from
/// the range every outgoing connection takes its local port from, so with a hundred suites connecting at once
/// another client could take it before the server binds it ("Address already in use").
public func freeLoopbackPort() -> UInt16 {
    for _ in 0..<1000 {
        let port = UInt16.random(in: 20_000...32_700)
        guard handedOut.withLock({ $0.insert(port).inserted }) else { continue }
        guard let fd = try? Socket.listen(host: "127.0.0.1", port: port) else { continue }
        close(fd)
        return port
    }
    fatalError("no free loopback port between 20000 and 32700")
}
