import Simulators

/// A TCP port on 127.0.0.1 that nothing listens on right now, chosen by the kernel.
public func freeLoopbackPort() -> UInt16 {
    do { return try Socket.freeLoopbackPort() } catch { fatalError("no free loopback port: \(error)") }
}
