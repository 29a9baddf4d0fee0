import BusPolling
import MQTTPublisher

/// What one gateway process holds in memory and loses when it dies: per device the real `EventLogStateMachine`
/// and `DeviceHealthStateMachine` with the committed mark the writer posted, the ring, the writer's batch, and
/// the publisher's real `PublisherStateMachine` with its journal cursor and the PUBACKs not yet marked.
struct ScheduledGateway {
    struct Poller {
        var fifo: EventLogStateMachine
        var health = DeviceHealthStateMachine()
        /// `DeviceLink.committed`: the highest (boot, seq) the writer committed for this device.
        var committed: (boot: UInt16, seq: UInt32)?
        var nextDue: Int64 = 0
    }

    static let ringCapacity = 16
    static let maximumBatch = 8

    var pollers: [Poller]
    var ring: [ScheduledRecord] = []
    /// Taken off the ring, not yet committed.
    var batch: [ScheduledRecord]?
    /// Committed, marks not yet posted to the pollers.
    var unposted: [Int: (UInt16, UInt32)]?
    var machine: PublisherStateMachine
    var client = SimulatedMQTTClient()
    /// `EventPublisher.cursor`: the highest journal seq handed to the client in this run.
    var cursor: Int64 = 0
    /// PUBACKed journal seqs not yet marked published (`EventPublisher.acknowledged`).
    var acknowledged: [Int64] = []
    /// Refused journal seqs not yet journalled as refused (`EventPublisher.refused`).
    var refused: [Int64] = []

    init(devices: Int, alwaysReadFull: Bool, maxInflight: Int) {
        pollers = Array(repeating: Poller(fifo: EventLogStateMachine(windowRecords: 3, alwaysReadFull: alwaysReadFull)),
                        count: devices)
        machine = PublisherStateMachine(maxInflight: maxInflight)
        machine.started()
    }

    /// `EventPublisher.mayReadBatch`.
    var mayReadBatch: Bool {
        let available = machine.allowance
        let threshold = max(1, machine.maxInflight / 4)
        return available > 0 && (available >= threshold || machine.journalInflightCount == 0)
    }
}
