import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A socat pseudo-terminal pair standing in for an RS-485 line: the gateway opens one end, the RTU simulator the other.
struct SerialLinePair {
    let gatewaySide: String
    let deviceSide: String
    private let socat: Process

    init(directory: URL) throws {
        gatewaySide = directory.appendingPathComponent("gateway-tty").path
        deviceSide = directory.appendingPathComponent("device-tty").path
        socat = Process()
        socat.executableURL = URL(fileURLWithPath: "/usr/bin/socat")
        socat.arguments = ["-d", "-d", "pty,raw,echo=0,link=\(gatewaySide)", "pty,raw,echo=0,link=\(deviceSide)"]
        socat.standardOutput = FileHandle.nullDevice
        socat.standardError = FileHandle.nullDevice
        do { try socat.run() } catch { throw BenchError("cannot start /usr/bin/socat: \(error)") }
        let deadline = Date().addingTimeInterval(5)
        while !(FileManager.default.fileExists(atPath: gatewaySide) && FileManager.default.fileExists(atPath: deviceSide)) {
            guard Date() < deadline, socat.isRunning else {
                stop()
                throw BenchError("socat made no pseudo-terminal pair")
            }
            usleep(10_000)
        }
    }

    func stop() {
        kill(socat.processIdentifier, SIGKILL)
        socat.waitUntilExit()
    }
}
