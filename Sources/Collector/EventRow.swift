import AccessModel

/// One row of table `events` (SPEC 4.4): the CloudEvent keyed by its `id`, with the columns a property company
/// queries by, and what `gateway.erased` and `gateway.events_unconfirmed_expired` mean for receipts.
public struct EventRow: Sendable, Equatable {
    public var id: String
    public var source: String
    public var type: String
    public var time: Timestamp?
    public var site: String
    public var gateway: String?
    public var device: String
    public var gwepoch: String?
    public var gwseq: Int64?
    /// The gateway's clock when it journalled the event (`recordedtime`), for the lag metric.
    public var recordedTime: Timestamp?
    /// The whole CloudEvent; stored as `jsonb`.
    public var event: JSONValue
    /// For `gateway.erased`: the id of the event to delete (`data.erases`).
    public var erases: String?
    /// For `gateway.events_unconfirmed_expired`: the places of its epoch gone for good (`from_gwseq...to_gwseq`).
    public var expired: ClosedRange<Int64>?

    /// The gateway whose receipts this row counts for: the place (`gwseq`) in one journal epoch of one gateway.
    public var receiptKey: ReceiptKey? {
        guard let gateway, let gwepoch, gwseq != nil else { return nil }
        return ReceiptKey(site: site, gateway: gateway, epoch: gwepoch)
    }
}

/// A gateway's journal epoch: what one receipt is about (SPEC 4.3).
public struct ReceiptKey: Sendable, Hashable, CustomStringConvertible {
    public var site: String
    public var gateway: String
    public var epoch: String

    public init(site: String, gateway: String, epoch: String) {
        self.site = site
        self.gateway = gateway
        self.epoch = epoch
    }

    public var description: String { "\(site)/\(gateway) epoch \(epoch)" }
}

/// The latest retained state of a device (`{prefix}/{site}/{device}/state`).
public struct DeviceStateRow: Sendable, Equatable {
    public var site: String
    public var device: String
    public var payload: JSONValue
}

/// The latest retained status of a gateway (`{prefix}/{site}/gateway/{gateway}/status`).
public struct GatewayStatusRow: Sendable, Equatable {
    public var site: String
    public var gateway: String
    public var state: String?
    public var payload: JSONValue
}
