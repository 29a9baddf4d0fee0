import BusPolling
import DeviceProfiles
import MQTTPublisher
import Simulators

/// A seeded fault schedule (the FoundationDB simulation idea at the gateway's scale): devices, the gateway's
/// real pure state machines, a journal and a broker, all in memory, driven by one seeded generator through a
/// random interleaving of work and faults, with the delivery guarantees (SPEC 5) checked after every step and,
/// once the faults stop, that everything drains within a bound. No sockets, threads or clocks: a seed replays.
public struct FaultSchedule {
    public struct Violation: Error, CustomStringConvertible {
        public let seed: UInt64
        public let step: Int
        public let message: String
        public let trace: [String]

        public var description: String {
            "seed \(seed), step \(step): \(message)\n  last steps:\n    " + trace.joined(separator: "\n    ")
        }
    }

    enum Action: CustomStringConvertible {
        case record(Int, count: Int), serve(Int), write, publish, connect, brokerProcess, puback
        case crash, timeout(Int), misroute(Int), refuseAck(Int), reboot(Int), windowGap(Int)
        case disconnect, refuseConnections(Bool), duplicateDelivery, reorderPubacks, drainRound(Int)
        /// What a step did, in a replay only.
        case note(String)

        var description: String {
            switch self {
            case let .record(d, count): "device \(d) records \(count) event(s)"
            case let .serve(d): "poller serves device \(d)"
            case .write: "journal writer step"
            case .publish: "publisher step"
            case .connect: "MQTT connect attempt"
            case .brokerProcess: "broker processes a publication"
            case .puback: "client receives a PUBACK"
            case .crash: "GATEWAY CRASH and restart"
            case let .timeout(d): "device \(d): next request times out"
            case let .misroute(d): "device \(d): next reply comes from another unit"
            case let .refuseAck(d): "device \(d): refuses the next ack (exception 03)"
            case let .reboot(d): "device \(d) REBOOTS (new boot id)"
            case let .windowGap(d): "device \(d): next window skips a held record"
            case .disconnect: "broker connection drops"
            case let .refuseConnections(on): "broker \(on ? "starts" : "stops") refusing connections"
            case .duplicateDelivery: "broker delivers the next message twice"
            case .reorderPubacks: "the two oldest PUBACKs in transit swap places"
            case let .drainRound(n): "drain round \(n)"
            case let .note(text): "    \(text)"
            }
        }
    }

    /// A deliberate defect in the shells, so the harness's own tests show that each invariant can fail.
    public enum Mutation: Sendable {
        /// The writer posts committed marks as soon as it takes a batch, before committing it.
        case marksPostedBeforeCommit
        /// The poller drops the loss the state machine reports.
        case lossReportsDropped
        /// The publisher never marks PUBACKed events published.
        case pubacksNeverMarked
        /// The journal drops the marks of events acknowledged out of order, above the publication watermark.
        case outOfOrderMarksDropped
        /// A restarted reader starts from the device's own `ack_seq`, ignoring the journal's device cursor (the
        /// gateway before the fix of the two known issues: a loss reported twice, or hidden by a crash).
        case readersIgnoreTheJournal
    }

    public let seed: UInt64
    public let faults: ScheduleFaults
    let mutation: Mutation?
    var rng: SeededRandom
    var devices: [SimulatedDevice]
    var journal = SimulatedJournal()
    var broker = SimulatedBroker()
    var gateway: ScheduledGateway
    let alwaysReadFull: Bool
    let maxInflight: Int
    var clock: Int64 = 0
    static let pollMillis: Int64 = 100
    let faultSteps: Int
    static let drainRounds = 600

    var actions: [Action] = []
    /// Records what each step did beside the actions (for a replayed seed).
    public var verbose = false
    var violation: String?
    /// Per device: the position (in recording order) of the last event delivered for the first time.
    var lastDelivered: [Int]
    var deliveredIDs: Set<String> = []
    /// Per device: the ranges reported lost, by (boot, range), with the id they were delivered under.
    var lossReports: [[(boot: UInt16, range: ClosedRange<UInt32>, id: String)]]
    /// Per device: events an ack released without them being journalled (an ack that reached a restarted device).
    var releasedUnread: [Set<UInt64>]

    public init(seed: UInt64, faults: ScheduleFaults, mutation: Mutation? = nil) {
        self.seed = seed
        self.faults = faults
        self.mutation = mutation
        var rng = SeededRandom(seed: seed)
        let count = Int.random(in: 1...3, using: &rng)
        // Whether each log frees acknowledged records (tail_seq = head_seq + 1 when empty, SPEC 3.4; issue 19 item 1)
        // comes from a generator of its own, so every seed keeps the schedule it had before.
        var variant = SeededRandom(seed: seed ^ 0x9E37_79B9_7F4A_7C15)
        devices = (0..<count).map { _ in
            SimulatedDevice(capacity: Int.random(in: 6...16, using: &rng), boot: UInt16.random(in: 1...60000, using: &rng),
                            freesAcknowledged: Bool.random(using: &variant))
        }
        alwaysReadFull = Bool.random(using: &rng)
        maxInflight = Int.random(in: 1...8, using: &rng)
        faultSteps = Int.random(in: 60...200, using: &rng)
        gateway = ScheduledGateway(devices: count, alwaysReadFull: alwaysReadFull, maxInflight: maxInflight)
        lastDelivered = Array(repeating: -1, count: count)
        lossReports = Array(repeating: [], count: count)
        releasedUnread = Array(repeating: [], count: count)
        self.rng = rng
        if faults.contains(.deniedPublications), rng.chance(0.6) { broker.deniedType = Int.random(in: 0..<3, using: &rng) }
    }

    /// Runs the schedule: random work and faults, then a drain without faults, then the end-state checks.
    public mutating func run() throws(Violation) {
        for step in 0..<faultSteps {
            let action = chooseAction()
            actions.append(action)
            perform(action)
            try check(step)
        }
        devices.indices.forEach { devices[$0].refuseNextAck = false; devices[$0].gapInNextWindow = false
            devices[$0].nextRequestFault = nil }
        broker.refusingConnections = false
        broker.duplicateNextDelivery = false
        for round in 0..<Self.drainRounds {
            if let unfinished = undrained(), round == Self.drainRounds - 1 {
                violation = "nothing may be stuck: \(Self.drainRounds) rounds after the faults stopped, \(unfinished)"
            } else if undrained() == nil {
                break
            }
            actions.append(.drainRound(round))
            drainRound()
            try check(faultSteps + round)
        }
        checkEveryEventAccountedFor()
        try check(faultSteps + Self.drainRounds)
    }

    /// A compact description of the schedule's shape, for the replay output.
    public var shape: String {
        "\(devices.count) device(s), capacities \(devices.map(\.log.capacity)), logs that free acknowledged records \(devices.map(\.log.freesAcknowledged)), \(alwaysReadFull ? "TCP (full reads)" : "RTU (header first)"), max_inflight \(maxInflight), denied type \(broker.deniedType.map(String.init) ?? "none"), \(faultSteps) fault steps, faults \(faults)"
    }

    /// Every action so far, for a replayed seed.
    public var fullTrace: [String] { actions.map(\.description) }

    func check(_ step: Int) throws(Violation) {
        guard let violation else { return }
        throw Violation(seed: seed, step: step, message: violation, trace: actions.suffix(40).map(\.description))
    }

    mutating func note(_ text: @autoclosure () -> String) {
        if verbose { actions.append(.note(text())) }
    }

    mutating func violated(_ message: String) {
        if violation == nil { violation = message }
    }

    // MARK: Choosing

    mutating func chooseAction() -> Action {
        let device = Int.random(in: 0..<devices.count, using: &rng)
        while true {
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<16: return .record(device, count: 1)
            case 16..<30: return .serve(device)
            case 30..<42: return .write
            case 42..<52: return .publish
            case 52..<55: return .connect
            case 55..<65: return .brokerProcess
            case 65..<75: return .puback
            case 75..<77 where faults.contains(.overflows):
                return .record(device, count: devices[device].log.capacity + Int.random(in: 1...4, using: &rng))
            case 77..<79 where faults.contains(.gatewayCrashes): return .crash
            case 79..<82 where faults.contains(.timeouts): return .timeout(device)
            case 82..<84 where faults.contains(.misroutedReplies): return .misroute(device)
            case 84..<87 where faults.contains(.refusedAcks): return .refuseAck(device)
            case 87..<88 where faults.contains(.reboots): return .reboot(device)
            case 88..<91 where faults.contains(.windowGaps): return .windowGap(device)
            case 91..<94 where faults.contains(.disconnects): return .disconnect
            case 94..<96 where faults.contains(.refusedConnections): return .refuseConnections(!broker.refusingConnections)
            case 96..<98 where faults.contains(.duplicateDeliveries): return .duplicateDelivery
            case 98..<100 where faults.contains(.reorderedPubacks): return .reorderPubacks
            default: continue
            }
        }
    }

    mutating func perform(_ action: Action) {
        clock += 10
        switch action {
        case let .record(d, count):
            for _ in 0..<count { devices[d].record(type: Int.random(in: 0..<3, using: &rng), at: clock) }
        case let .serve(d):
            if isDue(d) { serve(d) }
        case .write: writerStep()
        case .publish: publisherStep()
        case .connect: connect()
        case .brokerProcess: brokerProcess()
        case .puback: receivePuback()
        case .crash: crash()
        case let .timeout(d): devices[d].nextRequestFault = .timeout
        case let .misroute(d): devices[d].nextRequestFault = .misrouted
        case let .refuseAck(d): devices[d].refuseNextAck = true
        case let .reboot(d):
            // Losses no read of the running gateway saw since are as unknowable after the restart as the rest.
            if devices[d].lastReadByGateway < devices[d].lastOverwrite {
                let boot = UInt64(devices[d].boot)
                devices[d].forgotten.formUnion(devices[d].overwrittenUnread.union(releasedUnread[d]).filter { $0 >> 32 == boot })
            }
            devices[d].reboot()
        case let .windowGap(d): devices[d].gapInNextWindow = true
        case .disconnect:
            if broker.connected {
                broker.dropConnection()
                _ = gateway.machine.disconnected(rc: 7)
            }
        case let .refuseConnections(on): broker.refusingConnections = on
        case .duplicateDelivery: broker.duplicateNextDelivery = true
        case .reorderPubacks: if broker.pubacks.count >= 2 { broker.pubacks.swapAt(0, 1) }
        case .drainRound, .note: break
        }
    }

    mutating func drainRound() {
        clock += Self.pollMillis
        for d in devices.indices where isDue(d) { serve(d) }
        while gateway.batch != nil || gateway.unposted != nil || !gateway.ring.isEmpty { writerStep() }
        if !broker.connected { connect() }
        publisherStep()
        while !broker.inbound.isEmpty { brokerProcess() }
        while !broker.pubacks.isEmpty { receivePuback() }
        publisherStep()
    }

    /// What is not drained yet, or nil when everything is: every device acknowledged to its head, nothing on the
    /// ring or in the writer, nothing pending in the journal or unacknowledged at the MQTT client.
    func undrained() -> String? {
        for (d, device) in devices.enumerated() {
            if device.log.ack < device.log.head {
                return "device \(d) has ack_seq \(device.log.ack) below head_seq \(device.log.head) (boot \(device.boot))"
            }
            if device.log.head > 0, gateway.pollers[d].fifo.boot != device.boot {
                return "the gateway has not taken device \(d)'s boot \(device.boot) on"
            }
        }
        if !gateway.ring.isEmpty || gateway.batch != nil || gateway.unposted != nil { return "the writer has work left" }
        if journal.pendingCount > 0 {
            let row = journal.rows.first { journal.isPending($0) }!
            return "\(journal.pendingCount) journal event(s) unpublished, the oldest jseq \(row.jseq) (device \(row.device) \(row.kind))"
        }
        if !gateway.client.queue.isEmpty { return "\(gateway.client.queue.count) publication(s) unacknowledged at the client" }
        if !gateway.acknowledged.isEmpty || !gateway.refused.isEmpty { return "PUBACKs not yet marked" }
        return nil
    }
}
