/// A journal event handed to the MQTT client, as libmosquitto queues it and the broker receives it.
struct Publication {
    let mid: Int32
    let jseq: Int64
    let device: Int
    let kind: SimulatedJournal.Kind
    /// The CloudEvent id: (boot, seq) for device records, the journal seq for gateway events (SPEC 4).
    var id: String {
        switch kind {
        case let .device(boot, seq, _): "d\(device)/\(boot)/\(seq)"
        default: "g/\(jseq)"
        }
    }
}

/// libmosquitto's outgoing QoS 1 queue: unacknowledged messages survive a disconnect and are resent, in order and
/// under their mid, after the next CONNACK (see `PublisherStateMachine`); a process crash loses them.
struct SimulatedMQTTClient {
    private(set) var queue: [Publication] = []
    private var nextMid: Int32 = 0

    mutating func newMid() -> Int32 {
        nextMid = nextMid == 65535 ? 1 : nextMid + 1
        return nextMid
    }

    mutating func enqueue(_ publication: Publication) { queue.append(publication) }

    mutating func remove(mid: Int32) { queue.removeAll { $0.mid == mid } }
}

/// The broker and one subscriber: publications in transit, PUBACKs on the way back, an ACL, what was delivered.
struct SimulatedBroker {
    var connected = false
    var refusingConnections = false
    /// The event type the ACL denies, if any.
    var deniedType: Int?
    var duplicateNextDelivery = false
    /// Sent by the client, not yet processed by the broker.
    var inbound: [Publication] = []
    /// Processed: (mid, PUBACK reason code) on the way to the client.
    var pubacks: [(mid: Int32, reason: Int32)] = []
    /// What the subscriber received, in order.
    private(set) var delivered: [Publication] = []

    func denies(_ publication: Publication) -> Bool {
        if case let .device(_, _, type) = publication.kind, type == deniedType { return true }
        return false
    }

    /// The broker handles the oldest publication in transit; returns it when the subscriber got it.
    mutating func processOne() -> [Publication] {
        guard connected, !inbound.isEmpty else { return [] }
        let publication = inbound.removeFirst()
        if denies(publication) {
            pubacks.append((publication.mid, 0x87))  // MQTT 5 "not authorized"
            return []
        }
        var copies = [publication]
        if duplicateNextDelivery {
            duplicateNextDelivery = false
            copies.append(publication)
        }
        delivered += copies
        pubacks.append((publication.mid, 0))
        return copies
    }

    /// The connection ends: what was in transit either side is lost.
    mutating func dropConnection() {
        connected = false
        inbound.removeAll()
        pubacks.removeAll()
    }
}
