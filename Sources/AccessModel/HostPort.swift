/// A `HOST:PORT` text as the command line and configuration write endpoints (`127.0.0.1:1502`, `[::1]:1883`).
public struct HostPort: Sendable, Equatable {
    public var host: String
    public var port: UInt16

    /// Splits at the last colon; nil when there is none or the port is not 0...65535.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
        host = String(text[..<colon])
        self.port = port
    }
}
