import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A systemd notify socket for a test: binds a datagram socket at `path` and, like systemd, reads every message
/// at once on a thread of its own (a full socket queue would block the sender).
final class NotifySocket: Sendable {
    let path: String
    private let fd: Int32
    private let state = Shared()
    private let finished = DispatchSemaphore(value: 0)

    /// What the reading thread shares with the test; the thread holds this, not the socket, so `deinit` runs.
    final class Shared: Sendable {
        let value = Mutex<(messages: [String], stopped: Bool)>(([], false))
    }

    init(directory: URL) throws {
        path = directory.appendingPathComponent("notify.sock").path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        self.fd = fd
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8) + [0]
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            close(fd)
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        Thread { [state, finished] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !state.value.withLock({ $0.stopped }) {
                var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 50) > 0 else { continue }
                let count = recv(fd, &buffer, buffer.count, 0)
                guard count > 0 else { continue }
                let message = String(decoding: buffer[..<count], as: UTF8.self)
                state.value.withLock { $0.messages.append(message) }
            }
            finished.signal()
        }.start()
    }

    deinit {
        state.value.withLock { $0.stopped = true }
        finished.wait()
        close(fd)
    }

    /// Every message received so far, oldest first.
    var messages: [String] { state.value.withLock { $0.messages } }
}
