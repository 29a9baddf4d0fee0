import AccessModel
import Foundation
import Logging
import Synchronization

/// The process's one log handler.
///
/// Under journald (`JOURNAL_STREAM` names the very file stderr is) each message goes to journald's native socket as
/// structured fields: `MESSAGE`, `PRIORITY`, `MESSAGE_ID` (by `LogKind`), `DEVICE`, `BUS` and every other metadata
/// key upper-cased, so `journalctl DEVICE=door-3e` works. Otherwise it writes logfmt lines on stderr
/// (`time=… level=warning msg="…" device=door-3e keepalive="30.0 seconds"`). Rate-limited kinds (Modbus transport
/// errors per device, broker failures) pass through `LogRateLimiter` first.
public struct GatewayLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    let output: Output

    public init(output: Output) { self.output = output }

    /// Makes every logger of the process write through one handler at `level` (once, from `main`); returns the
    /// shared output, whose `flush()` writes the pending summaries before the process exits.
    @discardableResult
    public static func bootstrap(level: Logger.Level) -> Output {
        let output = Output(destination: .standard())
        LoggingSystem.bootstrap { _ in
            var handler = GatewayLogHandler(output: output)
            handler.logLevel = level
            return handler
        }
        return output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let fields = merged.map { (key: $0.key, value: "\($0.value)") }.sorted { $0.key < $1.key }
        output.write(Entry(level: event.level, message: "\(event.message)", metadata: fields,
                           file: event.file, function: event.function, line: event.line))
    }

    /// One message with its metadata flattened to text.
    public struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [(key: String, value: String)]
        var file: String = ""
        var function: String = ""
        var line: UInt = 0

        func value(_ key: String) -> String? { metadata.first { $0.key == key }?.value }
        var kind: LogKind? { value(LogKind.key).flatMap(LogKind.named) }
        /// Whose repeats these are: the device, else the broker, else the bus.
        var subject: String { value("device") ?? value("mqtt.broker") ?? value("bus") ?? "" }
    }

    /// Where the handler writes, shared by every logger of the process (swift-log copies handler values).
    public final class Output: Sendable {
        public enum Destination: Sendable {
            /// logfmt lines through `write`.
            case logfmt(@Sendable (String) -> Void)
            /// journald's native protocol: one datagram per message to `socket`; if a datagram cannot be sent,
            /// `<N>`-prefixed logfmt lines through `fallback` (journald reads those from stderr).
            case journal(socket: String, fallback: @Sendable (String) -> Void)

            /// journald when stderr is the stream journald gave us, else logfmt on stderr.
            public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> Destination {
                let stderr: @Sendable (String) -> Void = { writeAll(2, Array($0.utf8)) }
                guard let stream = environment["JOURNAL_STREAM"], journalStream(stream, names: 2) else { return .logfmt(stderr) }
                return .journal(socket: environment["ACCESSGW_JOURNAL_SOCKET"] ?? "/run/systemd/journal/socket", fallback: stderr)
            }
        }

        let destination: Destination
        let windowMillis: Int64
        private let limiter: Mutex<LogRateLimiter>
        private let journal: JournalSocket?

        /// `rateWindow`: how long repeats of a rate-limited kind are counted before one summary is written.
        public init(destination: Destination, rateWindow: Duration = .seconds(60)) {
            self.destination = destination
            windowMillis = rateWindow.components.seconds * 1000 + rateWindow.components.attoseconds / 1_000_000_000_000_000
            limiter = Mutex(LogRateLimiter(windowMillis: windowMillis))
            if case let .journal(socket, _) = destination { journal = JournalSocket(path: socket) } else { journal = nil }
        }

        func write(_ entry: Entry) {
            let now = Timestamp.now.millisecondsSinceEpoch
            guard let kind = entry.kind else { return emit(entry) }
            if !kind.ends.isEmpty {
                let summaries = limiter.withLock { $0.end(kind.ends, subject: entry.subject, nowMillis: now) }
                for summary in summaries { emit(self.entry(for: summary, template: entry)) }
            }
            guard kind.rateLimited else { return emit(entry) }
            let key = LogRateLimiter.Key(kind: kind.name, subject: entry.subject)
            switch limiter.withLock({ $0.admit(key, nowMillis: now) }) {
            case .write:
                emit(entry)
            case let .suppress(flushAt):
                last.withLock { $0[key] = entry }
                guard let flushAt else { return }
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(max(0, flushAt - now)))) { [self] in
                    flush(key)
                }
            }
        }

        /// The last suppressed message of each run, which its summary quotes.
        private let last = Mutex<[LogRateLimiter.Key: Entry]>([:])

        /// Writes the summary of every run with counted repeats now (the process is about to exit).
        public func flush() {
            let summaries = limiter.withLock { $0.flushAll(nowMillis: Timestamp.now.millisecondsSinceEpoch) }
            for summary in summaries {
                if let template = last.withLock({ $0[summary.key] }) { emit(entry(for: summary, template: template)) }
            }
        }

        private func flush(_ key: LogRateLimiter.Key) {
            guard let summary = limiter.withLock({ $0.flush(key, nowMillis: Timestamp.now.millisecondsSinceEpoch) }),
                  let template = last.withLock({ $0[key] }) else { return }
            emit(entry(for: summary, template: template))
        }

        /// "37 more timeouts in the last 60 s; the last: …", one level below an error (an ERROR once, then summaries).
        private func entry(for summary: LogRateLimiter.Summary, template: Entry) -> Entry {
            let kind = LogKind.named(summary.key.kind)
            let template = last.withLock { $0[summary.key] } ?? template
            let seconds = summary.millis >= windowMillis - 1000 && summary.millis <= windowMillis + 1000
                ? windowMillis / 1000 : max(1, (summary.millis + 999) / 1000)
            var entry = template
            entry.level = template.level >= .error ? .warning : template.level
            entry.message = "\(summary.count) more \(kind?.repeats ?? "repeats") in the last \(seconds) s; the last: \(template.message)"
            if template.value(LogKind.key) != summary.key.kind {
                entry.metadata.removeAll { $0.key == LogKind.key }
                entry.metadata.append((LogKind.key, summary.key.kind))
            }
            entry.metadata.append(("log.suppressed", "\(summary.count)"))
            entry.metadata.sort { $0.key < $1.key }
            return entry
        }

        private func emit(_ entry: Entry) {
            switch destination {
            case let .logfmt(write):
                write(Logfmt.line(entry, time: Timestamp.now))
            case let .journal(_, fallback):
                if journal?.send(JournalNative.datagram(entry)) != true {
                    fallback("<\(JournalNative.priority(entry.level))>\(Logfmt.line(entry, time: nil))")
                }
            }
        }
    }

    /// True when `JOURNAL_STREAM` ("device:inode") names the file open on `fd` (sd_journal_stream_fd(3)): a
    /// variable inherited by a program whose stderr was redirected elsewhere does not count.
    public static func journalStream(_ stream: String, names fd: Int32) -> Bool {
        let parts = stream.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }
}

/// logfmt: `key=value` pairs, a value quoted when it is empty or holds a space, a quote, `=` or a backslash, with
/// `\"` and `\\` inside quotes; control characters, U+2028/U+2029 and bidi overrides escaped as everywhere else
/// (TerminalText).
public enum Logfmt {
    static func line(_ entry: GatewayLogHandler.Entry, time: Timestamp?) -> String {
        var pairs: [String] = []
        if let time { pairs.append("time=\(time.rfc3339)") }
        pairs.append("level=\(entry.level.rawValue)")
        pairs.append("msg=\(value(entry.message))")
        for (key, value) in entry.metadata { pairs.append("\(self.key(key))=\(self.value(value))") }
        return pairs.joined(separator: " ") + "\n"
    }

    /// `text` as a logfmt value.
    public static func value(_ text: String) -> String {
        let escaped = TerminalText.escaped(text)
        guard escaped.isEmpty || escaped.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\\" }) else {
            return escaped
        }
        return "\"" + escaped.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// A metadata key: anything but letters, digits, `.`, `_` and `-` becomes `_`.
    static func key(_ text: String) -> String {
        String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
    }
}

/// journald's native protocol (systemd.journal-fields(7), "Native Journal Protocol"): a datagram of `FIELD=value\n`
/// lines; a value holding a newline is sent as `FIELD\n`, its length as 64-bit little endian, the bytes, `\n`.
enum JournalNative {
    static func datagram(_ entry: GatewayLogHandler.Entry) -> [UInt8] {
        var fields: [(String, String)] = [
            ("MESSAGE", TerminalText.escaped(entry.message)),
            ("PRIORITY", "\(priority(entry.level))"),
            ("SYSLOG_IDENTIFIER", "accessgw"),
        ]
        if let kind = entry.kind { fields.append(("MESSAGE_ID", kind.messageID)) }
        if !entry.file.isEmpty {
            fields += [("CODE_FILE", entry.file), ("CODE_LINE", "\(entry.line)"), ("CODE_FUNC", entry.function)]
        }
        let reserved = Set(fields.map(\.0))
        for (key, value) in entry.metadata {
            let name = fieldName(key)
            if !reserved.contains(name) { fields.append((name, TerminalText.escaped(value))) }
        }
        var bytes: [UInt8] = []
        for (name, value) in fields {
            bytes += Array(name.utf8)
            if value.contains("\n") {
                bytes.append(0x0A)
                withUnsafeBytes(of: UInt64(value.utf8.count).littleEndian) { bytes += $0 }
                bytes += Array(value.utf8)
            } else {
                bytes.append(UInt8(ascii: "="))
                bytes += Array(value.utf8)
            }
            bytes.append(0x0A)
        }
        return bytes
    }

    /// A metadata key as a journal field name: upper case, `A-Z0-9_` only, not starting with `_` or a digit (those
    /// are journald's own), at most 64 characters. `modbus.unit` becomes `MODBUS_UNIT`.
    static func fieldName(_ key: String) -> String {
        var name = String(key.uppercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
        if name.first.map({ $0 == "_" || $0.isNumber }) ?? true { name = "F" + name }
        return String(name.prefix(64))
    }

    /// syslog priorities: 7 debug … 2 critical.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }
}

/// An unconnected datagram socket that sends each entry to journald's socket path (so a restarted journald is
/// reached again, as sd_journal_send does).
final class JournalSocket: @unchecked Sendable {
    // @unchecked: both properties are immutable; sendto on one descriptor from several threads is safe.
    let fd: Int32
    let address: UnixAddress

    init?(path: String) {
        guard let address = UnixAddress(path) else { return nil }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        self.fd = fd
        self.address = address
        // Entries are small, but a burst must not be cut short by a small default send buffer.
        var size: Int32 = 8 * 1024 * 1024
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    func send(_ datagram: [UInt8]) -> Bool {
        var address = address
        return datagram.withUnsafeBytes { body in
            address.withSockaddr { sa, length in
                while true {
                    if sendto(fd, body.baseAddress, body.count, Int32(MSG_NOSIGNAL), sa, length) >= 0 { return true }
                    if errno != EINTR { return false }
                }
            }
        }
    }
}

/// Writes all of `bytes` to `fd`, retrying short writes and EINTR; false when the descriptor refuses. A socket is
/// written with MSG_NOSIGNAL, so a peer that went away is an error, not SIGPIPE.
@discardableResult
func writeAll(_ fd: Int32, _ bytes: [UInt8], isSocket: Bool = false) -> Bool {
    var rest = bytes[...]
    while !rest.isEmpty {
        let written = rest.withUnsafeBytes {
            isSocket ? send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) : write(fd, $0.baseAddress, $0.count)
        }
        if written < 0, errno == EINTR { continue }
        guard written > 0 else { return false }
        rest = rest.dropFirst(written)
    }
    return true
}
