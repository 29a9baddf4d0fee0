import AccessModel
import BusPolling
import EventRing

/// Everything the journal writer looks up by ring and by device slot, as one immutable value: a reload builds a
/// new one and the writer picks it up between batches, so no event is ever looked up under a lock.
public struct WriterTables: Sendable {
    /// One ring per running bus poller.
    public var rings: [EventRing<EventRecord>]
    public var normaliser: EventNormaliser
    /// Per device slot (`EventRecord.device`): where its events come from, its link (commit marks) and its
    /// poller's wake bell. Slots of removed devices keep their last entries.
    public var sources: [EventSource]
    public var links: [DeviceLink]
    public var pollerBells: [RingDoorbell]

    public init(rings: [EventRing<EventRecord>], normaliser: EventNormaliser, sources: [EventSource], links: [DeviceLink],
                pollerBells: [RingDoorbell]) {
        self.rings = rings
        self.normaliser = normaliser
        self.sources = sources
        self.links = links
        self.pollerBells = pollerBells
    }
}
