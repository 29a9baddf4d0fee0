/// The faults a schedule may inject; each schedule draws its actions from the enabled ones.
public struct ScheduleFaults: OptionSet, Sendable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// The gateway process dies: rings, uncommitted batches, state machines and libmosquitto's queue are gone.
    public static let gatewayCrashes = ScheduleFaults(rawValue: 1 << 0)
    /// A Modbus request gets no answer; an ack write may still have reached the device.
    public static let timeouts = ScheduleFaults(rawValue: 1 << 1)
    /// A reply from another unit (a misbehaving converter), rejected by the transport's unit check.
    public static let misroutedReplies = ScheduleFaults(rawValue: 1 << 2)
    /// The device answers exception 03 to an `ack_seq` write it did not apply, without having restarted (finding 1).
    public static let refusedAcks = ScheduleFaults(rawValue: 1 << 3)
    /// The device restarts its seq counter: new boot id, empty log.
    public static let reboots = ScheduleFaults(rawValue: 1 << 4)
    /// Bursts longer than the device's log: unread events are overwritten.
    public static let overflows = ScheduleFaults(rawValue: 1 << 5)
    /// The window of one read skips a record the device still holds (finding 5).
    public static let windowGaps = ScheduleFaults(rawValue: 1 << 6)
    /// The broker connection drops: messages in transit and PUBACKs on the way are lost.
    public static let disconnects = ScheduleFaults(rawValue: 1 << 7)
    /// The broker refuses the connection for a while (CONNACK refused).
    public static let refusedConnections = ScheduleFaults(rawValue: 1 << 8)
    /// The broker's ACL denies one event type: PUBACK reason 0x87 (finding 7).
    public static let deniedPublications = ScheduleFaults(rawValue: 1 << 9)
    /// The broker hands a message to the subscriber twice.
    public static let duplicateDeliveries = ScheduleFaults(rawValue: 1 << 10)
    /// PUBACKs arrive out of order (MQTT orders them per connection, but the journal's publication watermark must not
    /// depend on it): an event acknowledged after a newer one.
    public static let reorderedPubacks = ScheduleFaults(rawValue: 1 << 11)

    static let named: [(ScheduleFaults, String)] = [
        (.gatewayCrashes, "gatewayCrashes"), (.timeouts, "timeouts"), (.misroutedReplies, "misroutedReplies"),
        (.refusedAcks, "refusedAcks"), (.reboots, "reboots"), (.overflows, "overflows"), (.windowGaps, "windowGaps"),
        (.disconnects, "disconnects"), (.refusedConnections, "refusedConnections"),
        (.deniedPublications, "deniedPublications"), (.duplicateDeliveries, "duplicateDeliveries"),
        (.reorderedPubacks, "reorderedPubacks"),
    ]

    public static let all = ScheduleFaults(named.map(\.0))

    public var description: String {
        "[" + Self.named.filter { contains($0.0) }.map(\.1).joined(separator: ", ") + "]"
    }
}
