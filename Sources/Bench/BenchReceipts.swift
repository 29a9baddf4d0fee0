import AccessModel
import Foundation
import Logging
import MQTTPublisher
import RequestAuthority
import Synchronization

/// The centre of `accessgw bench --receipts` (SPEC 4.3): the places (`gwseq`) its subscriber received, folded into
/// `through` and ranges, published once a second as a signed, retained receipt by an issuer granted `receipt`.
final class BenchReceipts: Sendable {
    struct Ledger {
        var through: Int64 = 0
        var above: Set<Int64> = []

        mutating func add(_ place: Int64) {
            guard place > through else { return }
            above.insert(place)
            while above.remove(through + 1) != nil { through += 1 }
        }

        /// At most 64 ranges of the places above `through`, ascending.
        var ranges: [ClosedRange<Int64>] {
            var ranges: [ClosedRange<Int64>] = []
            for place in above.sorted() {
                if let last = ranges.last, place == last.upperBound + 1 {
                    ranges[ranges.count - 1] = last.lowerBound...place
                } else {
                    guard ranges.count < Receipt.maxRanges else { break }
                    ranges.append(place...place)
                }
            }
            return ranges
        }
    }

    let subscriber: BenchSubscriber
    let issuer: BenchIssuer
    let client: MQTTPublisher
    let topic: String
    let epoch: Mutex<String?> = Mutex(nil)
    let ledger = Mutex(Ledger())
    let stopping = Atomic<Bool>(false)
    /// Receipts published so far.
    let published = Atomic<Int>(0)

    init(subscriber: BenchSubscriber, issuer: BenchIssuer, client: MQTTPublisher, topic: String) {
        self.subscriber = subscriber
        self.issuer = issuer
        self.client = client
        self.topic = topic
        subscriber.notesPlaces = true
    }

    /// The highest place confirmed so far.
    var through: Int64 { ledger.withLock { $0.through } }

    func start(epoch: String) {
        self.epoch.withLock { $0 = epoch }
        let thread = Thread { [self] in
            while !stopping.load(ordering: .acquiring) {
                Thread.sleep(forTimeInterval: 1)
                publishReceipt()
            }
        }
        thread.name = "bench-receipts"
        thread.start()
    }

    func stop() { stopping.store(true, ordering: .releasing) }

    func publishReceipt() {
        guard let epoch = epoch.withLock({ $0 }) else { return }
        let (through, ranges) = ledger.withLock { ledger in
            for place in subscriber.takePlaces() { ledger.add(place) }
            return (ledger.through, ledger.ranges)
        }
        let receipt = Receipt(issuer: issuer.id, time: .now, epoch: epoch, through: through, ranges: ranges)
        let payload = receipt.payload
        guard let signature = try? RequestAuthority.signature(topic: topic, payload: payload, key: issuer.key) else { return }
        if client.publish(topic: topic, payload: payload,
                          properties: RequestProperties(userProperties: [("signature", signature)], retain: true)) {
            published.add(1, ordering: .relaxed)
        }
    }
}
