import AccessModel
import Foundation
import ServiceLifecycle
import Synchronization

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
        let pending = Mutex(Data())
        let colour = colour
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let chunk = handle.availableData
            let lines: [Data] = pending.withLock { buffer in
                buffer.append(chunk)
                var complete: [Data] = []
                while let newline = buffer.firstIndex(of: 10) {
                    complete.append(buffer[buffer.startIndex..<newline])
                    buffer.removeSubrange(buffer.startIndex...newline)
                }
                return complete
            }
            for line in lines {
                guard let rendered = EventLine.render(payload: String(decoding: line, as: UTF8.self), colour: colour) else { continue }
                FileHandle.standardOutput.write(Data((rendered + "\n").utf8))
            }
        }
        try process.runWithTerminationSignalsUnblocked()
        await withGracefulShutdownHandler {
            while process.isRunning, !Task.isShuttingDownGracefully { try? await Task.sleep(for: .milliseconds(200)) }
        } onGracefulShutdown: {
            process.terminate()
        }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        pipe.fileHandleForReading.readabilityHandler = nil
    }
}
