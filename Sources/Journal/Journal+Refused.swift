import AccessModel

/// An event the broker refused, as the retry of refused events (issue 19 item 12) sends it again.
public struct RefusedEvent: Sendable, Equatable {
    public var journalSeq: Int64
    public var topic: String
    public var payload: String
}
