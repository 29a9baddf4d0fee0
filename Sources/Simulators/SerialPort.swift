#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An open serial device in raw mode (`open`, `tcsetattr` with `cfmakeraw`), owned and closed by this class.
final class SerialPort: Sendable {
    let path: String
    let fd: Int32

    /// Opens `path` non-blocking and sets baud, parity, data and stop bits.
    init(path: String, settings: SerialLineSettings) throws(SimulatorError) {
        self.path = path
        guard let speed = Self.speed(settings.baud) else {
            throw SimulatorError("serial line \(path): baud \(settings.baud) is not supported")
        }
        guard settings.dataBits == 7 || settings.dataBits == 8, settings.stopBits == 1 || settings.stopBits == 2 else {
            throw SimulatorError("serial line \(path): \(settings.dataBits) data bits / \(settings.stopBits) stop bits")
        }
        let fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK)
        guard fd >= 0 else { throw .system("cannot open serial line \(path)", errno: errno) }
        var tio = termios()
        guard tcgetattr(fd, &tio) == 0 else {
            let code = errno
            close(fd)
            throw .system("serial line \(path) is not a terminal", errno: code)
        }
        cfmakeraw(&tio)
        tio.c_cflag |= tcflag_t(CLOCAL | CREAD)
        tio.c_cflag &= ~tcflag_t(CSIZE | PARENB | PARODD | CSTOPB)
        tio.c_cflag |= tcflag_t(settings.dataBits == 7 ? CS7 : CS8)
        if settings.parity != .none { tio.c_cflag |= tcflag_t(PARENB) }
        if settings.parity == .odd { tio.c_cflag |= tcflag_t(PARODD) }
        if settings.stopBits == 2 { tio.c_cflag |= tcflag_t(CSTOPB) }
        withUnsafeMutableBytes(of: &tio.c_cc) { cc in
            cc[Int(VMIN)] = 0
            cc[Int(VTIME)] = 0
        }
        cfsetispeed(&tio, speed)
        cfsetospeed(&tio, speed)
        guard tcsetattr(fd, TCSANOW, &tio) == 0 else {
            let code = errno
            close(fd)
            throw .system("cannot configure serial line \(path)", errno: code)
        }
        tcflush(fd, TCIOFLUSH)
        self.fd = fd
    }

    deinit { close(fd) }

    /// Reads what is available without blocking; empty when nothing is.
    func readAvailable() -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        return n > 0 ? Array(buffer.prefix(n)) : []
    }

    /// Writes a whole frame; false when the line is gone.
    func write(_ bytes: [UInt8]) -> Bool { Socket.writeAll(fd, bytes, isSocket: false) }

    private static func speed(_ baud: Int) -> speed_t? {
        switch baud {
        case 1200: speed_t(B1200)
        case 2400: speed_t(B2400)
        case 4800: speed_t(B4800)
        case 9600: speed_t(B9600)
        case 19200: speed_t(B19200)
        case 38400: speed_t(B38400)
        case 57600: speed_t(B57600)
        case 115200: speed_t(B115200)
        case 230400: speed_t(B230400)
        default: nil
        }
    }
}
