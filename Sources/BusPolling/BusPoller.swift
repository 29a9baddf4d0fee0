import AccessModel
import Atomics
import DeviceProfiles
import EventRing
import Foundation
import Logging
import Metrics
import ModbusTransport

/// Polls every device of one bus on a thread of its own with its own libmodbus context: event logs into the
/// ring, acks after the journal commits, state blocks onto the board, clocks checked and set.
///
/// Scheduling: the device whose turn is due soonest goes next. A device with a backlog is due again at once,
/// but only after the others already due, so a drain interleaves with everyone's regular polls; a device
/// waiting for its journal commit costs no bus time; an offline device is retried with backoff.
public final class BusPoller: @unchecked Sendable {
    // @unchecked: `devices`, `connection` and `buffer` are touched only by the poller thread after `start()`;
    // everything shared with other threads is atomic (`stopRequested`, `progress`, the links) or Sendable.
    public let bus: BusConfiguration
    let connection: ModbusConnection
    var devices: [PolledDevice]
    let ring: EventRing<EventRecord>
    let journalBell: RingDoorbell
    /// Rung by the journal writer after a commit, so a device waiting to ack is served at once, and by `submit`.
    public let wakeBell = RingDoorbell()
    /// Commands for this bus's devices: each is the next transaction on the line.
    let commands = CommandQueue()
    /// Probes asked through the control socket: after waiting commands, before the next poll.
    let lineTasks = LineTaskQueue()
    let board: DeviceStateBoard
    let logger: Logger
    let metrics: BusMetrics
    let buffer = UnsafeMutablePointer<UInt16>.allocate(capacity: 125)
    let progress = ManagedAtomic<Int64>(0)
    let stage: StageThread
    /// True while a command is being written: its own transactions must not start other commands.
    var runningCommand = false
    /// Commands whose write went unanswered, tried again between polls until their deadlines.
    var retries: [CommandRetry] = []
    /// Whether a poll ran since the last retry or probe transaction: they go one between two polls.
    var pollSinceBetween = true
    /// Whether a probe's read goes before a due retry at the next turn between polls (they take turns).
    var probeTurnNext = false
    /// Monotonic microseconds when the last transaction ended.
    var lastTransactionEnd: Int64 = 0
    /// Silence between a response and the next request: the configured turnaround, and on RTU never less
    /// than the 3.5-character frame gap (1.75 ms above 19200 baud) that Modbus RTU requires.
    let requiredSilenceMicros: Int64
    /// Asked before writing a device clock: the host clock's own state (`HostClock.status`, or a fixed answer).
    let hostClock: @Sendable () -> HostClock.Status
    /// The host clock state last logged, so that a lasting state is said once.
    var hostClockLogged: HostClock.Status?
    /// RTU: the state reads of devices with an event log share one pace (`StateSchedule.paceMillis`); nil on TCP.
    let statePaceMillis: Int64?
    /// Monotonic milliseconds from when the next paced state read may go.
    var nextStateSlot: Int64 = 0

    public init(bus: BusConfiguration, devices: [DeviceConfiguration], links: [DeviceLink], ring: EventRing<EventRecord>,
                journalBell: RingDoorbell, board: DeviceStateBoard, logger: Logger,
                hostClock: @escaping @Sendable () -> HostClock.Status = HostClock.status) throws(ModbusError) {
        self.bus = bus
        self.hostClock = hostClock
        connection = try ModbusConnection(bus: bus.id, endpoint: bus.endpoint, responseTimeoutMillis: Int(bus.timeoutMillis))
        let alwaysReadFull = !bus.endpoint.isSerial
        self.devices = zip(devices, links).map { PolledDevice(config: $0, link: $1, alwaysReadFull: alwaysReadFull) }
        self.ring = ring
        self.journalBell = journalBell
        self.board = board
        stage = StageThread(name: "gw-poll-\(bus.id)", wake: { [wakeBell] in wakeBell.ring() })
        var logger = logger
        logger[metadataKey: "bus"] = "\(bus.id)"
        self.logger = logger
        metrics = BusMetrics(bus: bus.id)
        var silence = bus.turnaroundMillis * 1000
        if case let .rtu(line) = bus.endpoint { silence = max(silence, Int64(line.timing.frameSilenceNanoseconds / 1000) + 1) }
        requiredSilenceMicros = silence
        statePaceMillis = bus.endpoint.isSerial
            ? StateSchedule.paceMillis(statePolls: devices.filter { $0.profile.state != nil && $0.profile.eventLog != nil }.map(\.statePollMillis))
            : nil
    }

    deinit { buffer.deallocate() }

    /// Starts the poller thread.
    public func start() {
        progress.store(monotonicMillis(), ordering: .relaxed)
        stage.start { [self] in run() }
    }

    /// Asks the thread to stop after its current transaction and waits for it.
    public func stop() {
        stage.stop()
        connection.disconnect()
    }

    /// Monotonic milliseconds of the loop's last iteration: the watchdog's proof that this bus makes progress.
    public var lastProgressMillis: Int64 { progress.load(ordering: .relaxed) }

    func run() {
        logger.info("polling \(devices.count) device(s) on \(bus.endpoint)")
        while !stage.isStopping {
            let now = monotonicMillis()
            progress.store(now, ordering: .relaxed)
            // Found in place, not through a copy of `devices` (see `ackIsDue`).
            var soonest = devices.indices.min(by: { devices[$0].nextDue < devices[$1].nextDue })
            // RTU: an ack that finishes an event (nothing more unread) goes before the round, with function 23 reading
            // the header on (one short transaction), so a second event at that door is not held for a round behind it.
            if bus.endpoint.isSerial, let finishing = devices.indices.first(where: { ackFinishesEvents(at: $0) }) {
                soonest = finishing
                devices[finishing].nextDue = min(devices[finishing].nextDue, now)
            }
            switch Self.nextTurn(commandWaiting: !commands.isEmpty, betweenDue: betweenDue(now: now), pollSinceBetween: pollSinceBetween,
                                 soonest: soonest.map { ($0, devices[$0].nextDue) }, now: now) {
            case .command:
                if let job = commands.next() { attempt(job, attempts: 0, lastError: nil) }
            case .between:
                runBetween(now: now)
                pollSinceBetween = false
            case .idle:
                _ = wakeBell.wait(timeout: .seconds(1)) { stage.isStopping || !commands.isEmpty || !lineTasks.isEmpty }
            case let .wait(millis):
                _ = wakeBell.wait(timeout: .milliseconds(millis)) {
                    stage.isStopping || !commands.isEmpty || !lineTasks.isEmpty
                        || devices.indices.contains { devices[$0].nextDue > now && ackIsDue(at: $0) }
                }
                for index in devices.indices where ackIsDue(at: index) {
                    devices[index].nextDue = min(devices[index].nextDue, monotonicMillis())
                }
            case let .poll(next):
                serve(next, now: now)
                pollSinceBetween = true
            }
        }
        endWaitingCommands()
        logger.info("stopped polling")
    }

    /// Whether the device at `index` emitted records the journal has now committed, so its ack may be written.
    /// Reads the two fields it needs in place: iterating `devices` or calling a property of an element copies the
    /// whole `PolledDevice`, retaining and releasing every reference it holds (12 % of a poller thread, measured).
    func ackIsDue(at index: Int) -> Bool {
        guard let fifo = devices[index].fifo, fifo.pendingAck != nil else { return false }
        return fifo.nextStep(committed: devices[index].link.committed) != .waitForCommit
    }

    /// Whether the device at `index` may write a committed ack now and its log showed nothing beyond what it emitted:
    /// an idle door's event, not a drain (a drain's acks interleave with everyone's polls, as any backlog does).
    func ackFinishesEvents(at index: Int) -> Bool {
        guard let fifo = devices[index].fifo, fifo.pendingAck != nil, !fifo.moreUnread, devices[index].ackWithRead,
              devices[index].health.consecutiveFailures == 0 else { return false }
        return fifo.nextStep(committed: devices[index].link.committed) != .waitForCommit
    }
}
