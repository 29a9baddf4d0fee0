#if canImport(Glibc)
import AccessModel
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging

/// A Modbus TCP server for one or more simulated units on one port, one blocking thread per connection.
///
/// Unit 0 or 255 reaches the only device when just one is served; an unknown unit answers exception 0B
/// (gateway target failed to respond) as a TCP-to-RS-485 gateway does.
/// `@unchecked Sendable` is safe because `listenFD`, `boundPort`, `open` and `stopping` are only touched under `lock`.
public final class ModbusTCPServer: @unchecked Sendable {
    public let host: String
    let requestedPort: UInt16
    let devices: [UInt8: SimulatedDevice]
    let logger: Logger
    let counters = StatisticsCounter()
    private let lock = NSCondition()
    private var listenFD: Int32 = -1
    private var boundPort: UInt16 = 0
    private var open: Set<Int32> = []
    private var stopping = false
    private var acceptThread: JoinableThread?

    /// A server for `devices` on `host:port`; port 0 lets the kernel choose (see `port` after `start()`).
    public init(host: String = "127.0.0.1", port: UInt16 = 0, devices: [SimulatedDevice],
                logger: Logger = Logger(label: "accessgw.simulate")) {
        self.host = host
        self.requestedPort = port
        self.devices = Dictionary(devices.map { ($0.unit, $0) }, uniquingKeysWith: { first, _ in first })
        self.logger = logger
    }

    /// The port the server listens on (the kernel's choice when 0 was requested).
    public var port: UInt16 { lock.withLock { boundPort } }

    /// Counters of requests, malformed frames, dropped replies and connections.
    public var statistics: ServerStatistics { counters.snapshot }

    /// Binds, listens and starts accepting connections.
    public func start() throws(SimulatorError) {
        let fd = try Socket.listen(host: host, port: requestedPort)
        let actual = Socket.localPort(fd)
        lock.withLock {
            listenFD = fd
            boundPort = actual
        }
        acceptThread = JoinableThread { [self] in acceptLoop(fd) }
    }

    /// Closes the listening socket and every connection, and waits for their threads to finish.
    public func stop() {
        lock.lock()
        guard !stopping else { lock.unlock(); return }
        stopping = true
        if listenFD >= 0 { shutdown(listenFD, Int32(SHUT_RDWR)) }
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
        lock.unlock()
        acceptThread?.join()
        lock.withLock { while !open.isEmpty { lock.wait() } }
    }

    /// Closes every open connection now, as a flaky network or a rebooting TCP gateway would.
    public func dropConnections() {
        lock.withLock { for fd in open { shutdown(fd, Int32(SHUT_RDWR)) } }
    }

    private func acceptLoop(_ listener: Int32) {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                break
            }
            let accepted = lock.withLock { () -> Bool in
                guard !stopping else { return false }
                open.insert(fd)
                return true
            }
            guard accepted else { close(fd); break }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            counters.update { $0.connections += 1 }
            JoinableThread { [self] in
                setCurrentThreadName("sim-tcp")  // the bench counts these threads' CPU apart from the gateway's
                serve(fd)
                close(fd)
                lock.withLock {
                    open.remove(fd)
                    lock.broadcast()
                }
            }.detach()
        }
        close(listener)
    }

    /// The device a request for `unit` reaches, if any.
    func device(for unit: UInt8) -> SimulatedDevice? {
        if let device = devices[unit] { return device }
        if (unit == 0 || unit == 255), devices.count == 1 { return devices.values.first }
        return nil
    }
}
