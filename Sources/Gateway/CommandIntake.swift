import AccessModel
import Atomics
import BusPolling
import DeviceProfiles
import Dispatch
import EventRing
import Journal
import Logging
import MQTTPublisher
import RequestAuthority
import Synchronization

/// Takes command requests from the broker (SPEC 4.1), decides each by the ten rules in order, hands accepted
/// ones to their bus poller as the next transaction, and journals, publishes and answers every outcome.
///
/// Messages arrive on libmosquitto's network thread and are decided on one serial queue of their own (journal
/// writes block on fsync); at most `maximumBacklog` wait, the rest are counted and dropped, so a flood of
/// garbage costs bounded memory and never delays the network thread that also carries the events' PUBACKs.
public final class CommandIntake: Sendable {
    /// Where a device's commands go: its configuration, its link (online or not) and its bus poller.
    public struct Target: Sendable {
        public var device: GatewayConfiguration.Device
        public var link: DeviceLink
        public var poller: BusPoller
    }

    static let maximumBacklog = 1000
    /// Rejections journalled and published per issuer per second; beyond it they are only counted (SPEC 4.1).
    static let rejectionsPerSecond = 10
    /// The rejection budget shared by every request that was not authenticated (no issuer id has that form).
    static let unauthenticatedBudget = " unauthenticated"

    let configuration: GatewayConfiguration
    /// The `commands:` section in force (issuers, keys, allow rules, TTLs) and its authority: a reload replaces
    /// them (`replace(commands:)`), and each request is decided under the one it read first.
    let section: Mutex<(commands: GatewayConfiguration.Commands, authority: RequestAuthority)>
    let journal: Journal
    let mqtt: MQTTPublisher
    let publisherBell: RingDoorbell
    let resolve: @Sendable (String) -> Target?
    let logger: Logger
    let queue = DispatchQueue(label: "accessgw.commands")
    let backlog = ManagedAtomic<Int>(0)
    let limiter = Mutex<RejectionLimiter>(RejectionLimiter(perSecond: rejectionsPerSecond))
    /// Replies owed to redeliveries of a request whose bus write has not ended yet, by issuer and request id.
    let waitingDuplicates = Mutex<[RequestKey: [Request]]>([:])
    /// Until when commands are refused because the id memory is new or was lost (SPEC 4.1 rule 7): a request
    /// written before could otherwise be written again while still within its deadline.
    let memoryGap = Mutex<CommandMemoryGap>(CommandMemoryGap())
    /// Set once the id memory's file was found deleted or replaced while running (it is then set aside).
    let memoryLossNoticed = ManagedAtomic<Bool>(false)
    let metrics = CommandMetrics()
    let replies: WithheldReplies

    /// Where the latency of the most recent written commands went, stage by stage.
    public var recentStages: [CommandStages] { metrics.recentStages }

    public init(configuration: GatewayConfiguration, journal: Journal, mqtt: MQTTPublisher, publisherBell: RingDoorbell,
                logger: Logger, resolve: @escaping @Sendable (String) -> Target?) {
        self.configuration = configuration
        replies = WithheldReplies(configuration: configuration, request: "command")
        section = Mutex((configuration.commands, configuration.commands.authority))
        self.journal = journal
        self.mqtt = mqtt
        self.publisherBell = publisherBell
        self.resolve = resolve
        var logger = logger
        logger[metadataKey: "component"] = "commands"
        self.logger = logger
    }

    /// Applies a reloaded `commands:` section: issuers, their keys and allow rules, `require_signature` and the
    /// TTLs hold from the next request on. (Turning commands on or off needs a restart: `ReloadPlan`.)
    public func replace(commands: GatewayConfiguration.Commands) {
        section.withLock { $0 = (commands, commands.authority) }
        logger.info("commands: \(commands.issuers.count) issuer(s) applied from the reloaded configuration")
    }

    /// Subscribes to `{prefix}/{site}/+/command/+` (QoS 1) on every connection.
    public func start() {
        logger.info("accepting commands on \(configuration.commandTopicFilter)")
        do {
            if case let .new(why) = try journal.openCommandClaims() { memoryLost(why) }
        } catch {
            logger.error("cannot open the command store \(journal.commandClaimsPath): \(error); every command fails (journal) until it opens")
        }
        watchMemory()
        mqtt.subscribe(configuration.commandTopicFilter) { [self] message in receive(message) }
    }

    /// Runs on the MQTT network thread: stamps the arrival and queues the decision.
    func receive(_ message: IncomingMessage) {
        let arrived = Timestamp.now
        let started = ContinuousClock.now
        let arrivedNanos = CommandJob.Stamps.now()
        guard backlog.loadThenWrappingIncrement(ordering: .relaxed) < Self.maximumBacklog else {
            backlog.wrappingDecrement(ordering: .relaxed)
            metrics.dropped.increment()
            return
        }
        queue.async { [self] in
            defer { backlog.wrappingDecrement(ordering: .relaxed) }
            var request = Request(message: message, arrived: arrived, started: started)
            request.stages.arrived = arrivedNanos
            decide(request)
        }
    }

    /// One request as it goes through the rules: what is known of it so far.
    struct Request: Sendable {
        var message: IncomingMessage
        var arrived: Timestamp
        var started: ContinuousClock.Instant
        var device: String?
        var command: String?
        var envelope: RequestEnvelope?
        var issuer: String?
        var target: Target?
        var args: [(String, JSONValue)] = []
        var deviceCommandID: UInt32?
        var stages = CommandStages()

        init(message: IncomingMessage, arrived: Timestamp, started: ContinuousClock.Instant) {
            self.message = message
            self.arrived = arrived
            self.started = started
        }
    }

    /// Rules 1–9 of SPEC 4.1, in order; the first that fails is the outcome.
    func decide(_ incoming: Request) {
        var request = incoming
        request.stages.decideStarted = CommandJob.Stamps.now()
        let (commands, authority) = section.withLock { $0 }
        // 1-6: pure (CommandIntake+Rules).
        let screened: Screened
        switch Self.screen(&request, commands: commands, authority: authority, configured: { [resolve] in resolve($0)?.device }) {
        case let .decided(decision): return finish(request, decision)
        case let .passed(passed): screened = passed
        }
        // The device's link and bus as they are now (a reload may have replaced them since).
        guard let target = resolve(screened.device.id) else { return finish(request, .rejected(.unknownDevice)) }
        request.target = target
        let envelope = screened.envelope, issuer = screened.issuer, device = screened.device.id, command = request.command!
        let block = screened.block, definition = screened.definition, argument = screened.argument, deadline = screened.deadline
        // From here the deadline is held on the monotonic clock (rule 8): a step of the wall clock changes nothing.
        let monotonicDeadline = request.started + .milliseconds(deadline.millisecondsSinceEpoch - request.arrived.millisecondsSinceEpoch)
        checkMemory()
        if let until = memoryGap.withLock({ $0.refusing(at: .now) }) {
            let left = until - .now
            logger.warning("command \(envelope.id) refused: the command id memory is new or was lost, commands are written again in \(left.components.seconds + 1) s")
            return finish(request, .failed("id_memory"))
        }
        // 7. seen before. A new claim goes to its bus (8, 9) from inside the claim's transaction, before its commit:
        // the fsync then overlaps the wait for the transaction on the line, and the write waits for the commit.
        let claim: CommandClaim
        request.stages.claimStarted = CommandJob.Stamps.now()
        let gate = CommitGate()
        var submitted = false
        do {
            claim = try journal.claimCommand(CommandRequestRecord(id: envelope.id, issuer: issuer, device: device, command: command,
                                                                  args: Self.canonical(request.args), received: request.arrived)) { stored in
                request.deviceCommandID = stored.deviceCommandID
                request.stages.claimed = CommandJob.Stamps.now()
                // 8. offline: answered once the claim is committed (below).
                guard target.link.status != .offline else { return }
                // 9. the next transaction on its bus
                target.poller.submit(job(for: request, target: target, block: block, definition: definition, argument: argument,
                                         deadline: monotonicDeadline, gate: gate))
                submitted = true
            }
            gate.open(committed: true)
        } catch {
            gate.open(committed: false)
            logger.error("cannot journal command \(envelope.id): \(error)")
            // A job already on its bus is answered by its own outcome (failed, journal), never written.
            return submitted ? () : finish(request, .failed("journal"))
        }
        switch claim {
        case let .seen(first):
            guard Self.isSameRequest(first, device: device, command: command, args: Self.canonical(request.args)) else {
                return finish(request, .rejected(.idReused))
            }
            if first.status == "pending" {
                waitingDuplicates.withLock { $0[RequestKey(issuer: issuer, id: envelope.id), default: []].append(request) }
                return
            }
            return finish(request, Outcome(status: first.status, reason: first.reason), duplicate: true)
        case .claimed:
            if !submitted { return finish(request, .failed("offline")) }
        }
    }

    /// The bus job of a claimed request; its outcome comes back to this intake's queue.
    func job(for submitted: Request, target: Target, block: CommandBlock, definition: CommandDefinition, argument: UInt16,
             deadline: ContinuousClock.Instant, gate: CommitGate) -> CommandJob {
        let device = target.device.id, id = submitted.envelope?.id ?? "-"
        let stamps = CommandJob.Stamps()
        return CommandJob(device: device, unit: target.device.unit, address: block.address, code: definition.code,
                          argument: argument, commandID: submitted.deviceCommandID!, deadline: deadline, stamps: stamps,
                          claimCommitted: gate) { [self] outcome in
            // Latency ends with the device's reply to the write (SPEC 8), not with the journalling that follows.
            let ended = ContinuousClock.now
            let replied = CommandJob.Stamps.now()
            queue.async { [self] in
                switch outcome {
                case .written:
                    var stages = submitted.stages
                    stages.bus(stamps, replied: replied)
                    metrics.record(stages)
                    finish(submitted, Outcome(status: "written", reason: nil), ended: ended)
                case .expired: finish(submitted, Outcome(status: "expired", reason: nil), ended: ended)
                case let .failed(reason, detail):
                    logger.warning("command \(id) to \(device) failed: \(detail)")
                    finish(submitted, .failed(reason), ended: ended)
                }
            }
        }
    }

    /// A request's outcome: the reply's and the audit event's `status` and `reason`.
    struct Outcome: Sendable {
        var status: String
        var reason: String?

        static func failed(_ reason: String) -> Outcome { Outcome(status: "failed", reason: reason) }
    }

    func finish(_ request: Request, _ decision: Decision) {
        switch decision {
        case let .rejected(rejection): finish(request, Outcome(status: "rejected", reason: rejection.rawValue))
        case .expired: finish(request, Outcome(status: "expired", reason: nil))
        case .accepted: finish(request, Outcome(status: "failed", reason: "internal"))
        }
    }

    /// Journals the outcome (claimed requests), answers on the Response Topic, journals and publishes the audit
    /// event, counts it; then answers redeliveries that waited for it.
    func finish(_ request: Request, _ outcome: Outcome, duplicate: Bool = false, ended: ContinuousClock.Instant? = nil) {
        let latency = (ended ?? ContinuousClock.now) - request.started
        let latencyMillis = Int64(latency.components.seconds * 1000) + Int64(latency.components.attoseconds / 1_000_000_000_000_000)
        metrics.count(status: outcome.status, reason: outcome.reason, latency: latency)
        if outcome.status == "rejected" {
            // The budget is the authenticated issuer's; whatever fails before authentication (retained, malformed,
            // unauthenticated) shares one, whichever issuer it names: made-up issuer names must not multiply the
            // audit events (each a journal commit) a flood costs.
            let issuer = request.issuer ?? Self.unauthenticatedBudget
            guard limiter.withLock({ $0.admit(issuer, at: request.arrived.millisecondsSinceEpoch) }) else {
                metrics.suppressed.increment()
                return
            }
        }
        let id = request.envelope?.id
        if let id, let issuer = request.issuer, request.deviceCommandID != nil, !duplicate {
            do { try journal.finishCommand(id: id, issuer: issuer, status: outcome.status, reason: outcome.reason) } catch {
                logger.error("cannot journal the outcome of command \(id): \(error)")
            }
        }
        // A reply only once authenticated, and only under the issuer's reply tree (SPEC 4.1); a withheld one is
        // counted and audited.
        var withheld: ReplyTopic.Refusal?
        if let topic = request.message.responseTopic {
            withheld = replies.refusal(topic, issuer: request.issuer == nil ? nil : request.envelope?.issuer)
        }
        if let topic = request.message.responseTopic, withheld == nil {
            var reply: [(String, JSONValue)] = [("id", id.map { .string($0) } ?? .null), ("status", .string(outcome.status))]
            if let reason = outcome.reason { reply.append(("reason", .string(reason))) }
            reply += [("duplicate", .bool(duplicate)), ("device", request.device.map { .string($0) } ?? .null),
                      ("command", request.command.map { .string($0) } ?? .null), ("latency_ms", .int(latencyMillis))]
            var bytes: [UInt8] = []
            JSONValue.object(reply).write(to: &bytes)
            mqtt.publishReply(topic: topic, payload: bytes, correlationData: request.message.correlationData)
        }
        audit(request, outcome, duplicate: duplicate, latencyMillis: latencyMillis, replyWithheld: withheld)
        if let withheld {
            logger.warning("no reply to \(Self.printable(request.message.responseTopic ?? "")): \(withheld.rawValue)",
                           metadata: ["command.id": "\(id ?? "-")"])
        }
        if outcome.status != "written" {
            logger.info("command \(outcome.status)\(outcome.reason.map { " (\($0))" } ?? "")",
                        metadata: ["device": "\(Self.printable(request.device ?? "-"))", "command.id": "\(id ?? "-")",
                                   "command.issuer": "\(request.issuer ?? request.envelope?.issuer ?? "-")"])
        }
        if let id, let issuer = request.issuer, request.deviceCommandID != nil, !duplicate {
            let waiting = waitingDuplicates.withLock { $0.removeValue(forKey: RequestKey(issuer: issuer, id: id)) } ?? []
            for redelivery in waiting { finish(redelivery, outcome, duplicate: true) }
        }
    }

    /// `command.written|rejected|expired|failed`, journalled like any gateway event and so published through
    /// the same durable QoS 1 path. A configured device's requests are audited under it once the request is
    /// authenticated (a `not_permitted` too); a device the configuration does not know, or a request not
    /// authenticated, under the gateway.
    func audit(_ request: Request, _ outcome: Outcome, duplicate: Bool, latencyMillis: Int64, replyWithheld: ReplyTopic.Refusal? = nil) {
        let target = request.target ?? (request.issuer == nil ? nil : request.device.flatMap(resolve))
        let source = target.map { configuration.source(of: $0.device) }
            ?? configuration.gatewaySource
        var fields: [(String, JSONValue)] = [
            ("issuer", .string(request.issuer ?? request.envelope?.issuer ?? "unknown")),
            ("command_id", request.envelope.map { .string($0.id) } ?? .null),
            ("command", .string(Self.printable(request.command ?? ""))),
        ]
        if target == nil, let device = request.device { fields.append(("device", .string(Self.printable(device)))) }
        if !request.args.isEmpty { fields.append(("args", .object(request.args))) }
        if let reason = outcome.reason { fields.append(("reason", .string(reason))) }
        if duplicate { fields.append(("duplicate", .bool(true))) }
        if let deviceCommandID = request.deviceCommandID { fields.append(("device_command_id", .int(Int64(deviceCommandID)))) }
        if let replyWithheld { fields.append(("reply_withheld", .string(replyWithheld.rawValue))) }
        fields.append(("latency_ms", .int(latencyMillis)))
        let event = NormalisedEvent(device: source.device, origin: .gateway, type: "command.\(outcome.status)", alarm: false,
                                    time: request.arrived, recordedTime: .now, fields: fields)
        do {
            _ = try journal.append([JournalEntry(event: event, source: source,
                                                 topic: CloudEvent.topic(of: event, source: source, prefix: configuration.mqtt.topicPrefix))])
            publisherBell.ring()
        } catch {
            logger.error("cannot journal command.\(outcome.status): \(error)")
        }
    }

    /// A topic level from an untrusted request, cut to 64 characters, for the audit trail.
    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.prefix(64).map(Character.init))
    }
}

/// Admits at most `perSecond` rejections per issuer in each wall-clock second.
struct RejectionLimiter {
    let perSecond: Int
    var second: Int64 = 0
    var counts: [String: Int] = [:]

    mutating func admit(_ issuer: String, at millis: Int64) -> Bool {
        let now = millis / 1000
        if now != second {
            second = now
            counts.removeAll(keepingCapacity: true)
        }
        let key = counts.count < 10_000 ? issuer : "*"   // a flood of made-up issuers shares one budget
        counts[key, default: 0] += 1
        return counts[key]! <= perSecond
    }
}
