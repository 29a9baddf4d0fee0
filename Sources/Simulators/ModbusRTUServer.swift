#if canImport(Glibc)
import AccessModel
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging

/// A Modbus RTU server on one serial line serving several units, as devices share an RS-485 bus.
///
/// Requests for units the line does not serve are ignored; broadcasts (unit 0) are executed without reply;
/// bad CRCs are counted and never answered. With `settings.pace` replies leave when the line would have
/// carried request, silence, latency and reply at the baud rate.
/// `@unchecked Sendable` is safe because `port`, `thread` and the wake pipe are set in `start()` before the
/// thread runs and released in `stop()` after it is joined; the thread only reads them.
public final class ModbusRTUServer: @unchecked Sendable {
    public let path: String
    public let settings: SerialLineSettings
    let devices: [UInt8: SimulatedDevice]
    let logger: Logger
    let counters = StatisticsCounter()
    let trace = LineTrace()
    private var port: SerialPort?
    private var thread: JoinableThread?
    private var wake: (read: Int32, write: Int32) = (-1, -1)

    /// A server for `devices` on the serial device at `path`.
    public init(path: String, settings: SerialLineSettings, devices: [SimulatedDevice],
                logger: Logger = Logger(label: "accessgw.simulate")) {
        self.path = path
        self.settings = settings
        self.devices = Dictionary(devices.map { ($0.unit, $0) }, uniquingKeysWith: { first, _ in first })
        self.logger = logger
    }

    /// Counters of requests, CRC errors, frames for other units and dropped replies.
    public var statistics: ServerStatistics { counters.snapshot }

    /// Opens and configures the line and starts serving it.
    public func start() throws(SimulatorError) {
        let port = try SerialPort(path: path, settings: settings)
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw .system("pipe() for serial line \(path)", errno: errno) }
        self.port = port
        wake = (fds[0], fds[1])
        let wakeRead = fds[0]
        thread = JoinableThread { [self] in serve(port, wakeRead: wakeRead) }
    }

    /// Stops serving, waits for the line's thread and closes the line.
    public func stop() {
        guard let thread else { return }
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
        thread.join()
        self.thread = nil
        close(wake.read)
        close(wake.write)
        port = nil
    }

    private func serve(_ port: SerialPort, wakeRead: Int32) {
        var assembler = RTUFrameAssembler()
        var frameStart: UInt64 = 0
        var lastByte: UInt64 = 0
        while true {
            var fds = [pollfd(fd: port.fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            var timeout: Int32 = -1
            if !assembler.isEmpty {
                let end = lastByte + settings.timing.frameSilenceNanoseconds
                let now = PreciseClock.now
                timeout = end > now ? Int32((end - now + 999_999) / 1_000_000) : 0
            }
            let ready = poll(&fds, 2, timeout)
            if ready < 0, errno == EINTR { continue }
            if fds[1].revents != 0 { return }
            let now = PreciseClock.now
            if ready == 0 || fds[0].revents & Int16(POLLIN) == 0 {
                if fds[0].revents & Int16(POLLHUP | POLLERR) != 0 {
                    PreciseClock.sleep(milliseconds: 10)  // the other end of a pty is closed; wait for it
                }
                if !assembler.isEmpty, now >= lastByte + settings.timing.frameSilenceNanoseconds,
                   let output = assembler.silence() {
                    handle(output, port: port, frameStart: frameStart)
                }
                continue
            }
            let bytes = port.readAvailable()
            guard !bytes.isEmpty else { continue }
            if assembler.isEmpty { frameStart = now }
            lastByte = now
            for output in assembler.append(bytes) { handle(output, port: port, frameStart: frameStart) }
        }
    }
}
