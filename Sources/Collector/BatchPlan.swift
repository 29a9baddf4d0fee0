import AccessModel

/// What one batch of received messages becomes before it meets the database (pure): events deduplicated by id
/// within the batch (a second copy with the same payload is a duplicate, with another payload a conflict), and
/// only the last state of each device and status of each gateway.
public struct BatchPlan: Sendable {
    public var events: [EventRow] = []
    public var states: [DeviceStateRow] = []
    public var statuses: [GatewayStatusRow] = []
    /// Copies of an event already in this batch, same payload.
    public var duplicates = 0
    /// Copies of an event already in this batch with another payload: the first is kept.
    public var conflicts: [Conflict] = []

    public struct Conflict: Sendable, Equatable {
        public var id: String
        public var firstSource: String
        public var secondSource: String
        public var secondEvent: JSONValue
    }

    public init(_ messages: [CollectedMessage]) {
        var eventIndex: [String: Int] = [:]
        var stateIndex: [String: Int] = [:]
        var statusIndex: [String: Int] = [:]
        for message in messages {
            switch message {
            case let .event(row):
                if let first = eventIndex[row.id] {
                    if events[first].event == row.event {
                        duplicates += 1
                    } else {
                        conflicts.append(Conflict(id: row.id, firstSource: events[first].source, secondSource: row.source,
                                                  secondEvent: row.event))
                    }
                } else {
                    eventIndex[row.id] = events.count
                    events.append(row)
                }
            case let .state(row):
                let key = row.site + "\u{1}" + row.device
                if let index = stateIndex[key] { states[index] = row } else { stateIndex[key] = states.count; states.append(row) }
            case let .status(row):
                let key = row.site + "\u{1}" + row.gateway
                if let index = statusIndex[key] { statuses[index] = row } else { statusIndex[key] = statuses.count; statuses.append(row) }
            case .rejected:
                break
            }
        }
    }

    public var isEmpty: Bool { events.isEmpty && states.isEmpty && statuses.isEmpty && conflicts.isEmpty }
}

/// What committing a batch did.
public struct BatchOutcome: Sendable, Equatable {
    /// Events stored now for the first time.
    public var stored = 0
    /// Events already stored with the same payload (or erased before): nothing changed.
    public var duplicates = 0
    /// Events already stored with another payload: the first kept, these counted and logged.
    public var conflicts: [BatchPlan.Conflict] = []
    /// Events deleted by `gateway.erased`.
    public var erased = 0
    /// Events the database refused one by one (after the batch as a whole was refused), with its reason.
    public var refused: [(id: String, reason: String)] = []
    /// Gateway epochs whose places this batch filled or confirmed again: their receipts are due.
    public var touched: Set<ReceiptKey> = []

    public init() {}

    public static func == (lhs: BatchOutcome, rhs: BatchOutcome) -> Bool {
        lhs.stored == rhs.stored && lhs.duplicates == rhs.duplicates && lhs.conflicts == rhs.conflicts
            && lhs.erased == rhs.erased && lhs.refused.map(\.id) == rhs.refused.map(\.id) && lhs.touched == rhs.touched
    }
}
