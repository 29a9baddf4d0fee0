import AccessModel
import Foundation
import Logging

/// Log lines on stderr; under systemd (`JOURNAL_STREAM` set) each line starts with its `<N>` syslog priority
/// so journald files it at the right level, and the timestamp is left to journald.
public struct StderrLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    let label: String
    let underSystemd: Bool

    public init(label: String, underSystemd: Bool = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil) {
        self.label = label
        self.underSystemd = underSystemd
    }

    /// Makes every logger of the process write through this handler at `level` (once, from `main`).
    public static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StderrLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let context = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        // A device's or broker's text in a message or its metadata never reaches the terminal or journald raw.
        let text = TerminalText.escaped(context.isEmpty ? "\(event.message)" : "\(event.message) [\(context)]")
        let line = underSystemd
            ? "<\(Self.priority(event.level))>\(text)\n"
            : "\(Timestamp.now.rfc3339) \(event.level.rawValue.uppercased()) \(text)\n"
        FileHandle.standardError.write(Data(line.utf8))
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

