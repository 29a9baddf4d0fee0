import AccessModel
import Foundation
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What a subscriber receives, printed live: `mosquitto_sub` on the event topics, each CloudEvent as one
/// `EventLine`. The demo's window onto the broker.
public struct LiveTail: Service {
    let brokerPort: UInt16
    let topic: String
    let colour: Bool

    public init(brokerPort: UInt16, topic: String, colour: Bool) {
        self.brokerPort = brokerPort
        self.topic = topic
        self.colour = colour
    }

    public func run() async throws {
        guard let subscriber = DemoSite.executable("mosquitto_sub") else {
            throw DemoSite.Missing(description: "the live tail needs mosquitto_sub: sudo apt-get install mosquitto-clients")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: subscriber)
        process.arguments = ["-h", "127.0.0.1", "-p", String(brokerPort), "-q", "1", "-t", topic]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        let colour = colour
        // Read with blocking reads on a thread of its own until end of file, not with `readabilityHandler`: tearing
        // down that handler's libdispatch read source races the descriptor's close and can crash the process on
        // Linux in `_dispatch_event_loop_drain` (swift-corelibs-foundation #3276, swift-corelibs-libdispatch #949).
        let reader = Thread {
            let fd = pipe.fileHandleForReading.fileDescriptor
            var pending = Data()
            var buffer = [UInt8](repeating: 0, count: 16384)
            while true {
                let count = read(fd, &buffer, buffer.count)
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { break }
                pending.append(contentsOf: buffer[0..<count])
                while let newline = pending.firstIndex(of: 10) {
                    let line = pending[pending.startIndex..<newline]
                    pending.removeSubrange(pending.startIndex...newline)
                    guard let rendered = EventLine.render(payload: String(decoding: line, as: UTF8.self), colour: colour) else { continue }
                    FileHandle.standardOutput.write(Data((rendered + "\n").utf8))
                }
            }
        }
        try process.runWithTerminationSignalsUnblocked()
        reader.start()
        await withGracefulShutdownHandler {
            while process.isRunning, !Task.isShuttingDownGracefully { try? await Task.sleep(for: .milliseconds(200)) }
        } onGracefulShutdown: {
            process.terminate()
        }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}
