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
    /// Replies owed to redeliveries of a request whose bus write has not ended yet, by request id.
    let waitingDuplicates = Mutex<[String: [Request]]>([:])
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
        do { try journal.openCommandClaims() } catch {
            logger.error("cannot open the command store \(journal.commandClaimsPath): \(error); every command fails (journal) until it opens")
        }
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
        let levels = request.message.topic.split(separator: "/", omittingEmptySubsequences: false)
        if levels.count >= 2, levels[levels.count - 2] == "command" {
            request.device = String(levels[levels.count - 3 < 0 ? 0 : levels.count - 3])
            request.command = String(levels[levels.count - 1])
        }
        // 1. retained
        if request.message.retained { return finish(request, .rejected(.retained)) }
        // 2. malformed
        guard request.device != nil, request.command != nil,
              case let .success(envelope) = RequestEnvelope.parse(request.message.payload), envelope.time != nil
        else { return finish(request, .rejected(.malformed)) }
        request.envelope = envelope
        if let args = envelope.body["args"] {
            guard case let .object(members) = args else { return finish(request, .rejected(.malformed)) }
            request.args = members
        }
        let device = request.device!, command = request.command!
        let (commands, authority) = section.withLock { $0 }
        // 3. authenticated
        let authentication = authority.authenticate(issuer: envelope.issuer, topic: request.message.topic,
                                                    payload: request.message.payload, signature: request.message.signature)
        guard case let .accepted(issuer) = authentication else { return finish(request, authentication) }
        request.issuer = issuer
        // 4. permitted
        let permission = authority.authorise(issuer: issuer, device: device, action: command)
        guard permission.isAccepted else { return finish(request, permission) }
        // 5. device, command, argument
        guard let target = resolve(device) else { return finish(request, .rejected(.unknownDevice)) }
        request.target = target
        guard let block = target.device.profile.commands, let definition = block.command(named: command) else {
            return finish(request, .rejected(.unknownCommand))
        }
        guard case let .success(argument) = definition.argumentWord(for: request.args) else {
            return finish(request, .rejected(.badArgument))
        }
        // 6. clock and deadline, at receipt
        let deadline = envelope.deadline(defaultTTL: commands.defaultTTLMillis, maxTTL: commands.maxTTLMillis)!
        if let timing = RequestAuthority.timing(sent: envelope.time!, deadline: deadline, now: request.arrived) {
            return finish(request, timing)
        }
        // 7. seen before. A new claim goes to its bus (8, 9) from inside the claim's transaction, before its commit:
        // the fsync then overlaps the wait for the transaction on the line, and the write waits for the commit.
        let claim: CommandClaim
        request.stages.claimStarted = CommandJob.Stamps.now()
        let gate = CommitGate()
        var submitted = false
        do {
            claim = try journal.claimCommand(CommandRequestRecord(id: envelope.id, issuer: issuer, device: device, command: command,
                                                                  received: request.arrived)) { stored in
                request.deviceCommandID = stored.deviceCommandID
                request.stages.claimed = CommandJob.Stamps.now()
                // 8. offline: answered once the claim is committed (below).
                guard target.link.status != .offline else { return }
                // 9. the next transaction on its bus
                target.poller.submit(job(for: request, target: target, block: block, definition: definition, argument: argument,
                                         deadline: deadline, gate: gate))
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
            if first.status == "pending" {
                waitingDuplicates.withLock { $0[envelope.id, default: []].append(request) }
                return
            }
            return finish(request, Outcome(status: first.status, reason: first.reason), duplicate: true)
        case .claimed:
            if !submitted { return finish(request, .failed("offline")) }
        }
    }

    /// The bus job of a claimed request; its outcome comes back to this intake's queue.
    func job(for submitted: Request, target: Target, block: CommandBlock, definition: CommandDefinition, argument: UInt16,
             deadline: Timestamp, gate: CommitGate) -> CommandJob {
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
        if let id, request.deviceCommandID != nil, !duplicate {
            do { try journal.finishCommand(id: id, status: outcome.status, reason: outcome.reason) } catch {
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
        if let id, request.deviceCommandID != nil, !duplicate {
            let waiting = waitingDuplicates.withLock { $0.removeValue(forKey: id) } ?? []
            for redelivery in waiting { finish(redelivery, outcome, duplicate: true) }
        }
    }

    /// `command.written|rejected|expired|failed`, journalled like any gateway event and so published through
    /// the same durable QoS 1 path; a device the configuration does not know is audited under the gateway.
    func audit(_ request: Request, _ outcome: Outcome, duplicate: Bool, latencyMillis: Int64, replyWithheld: ReplyTopic.Refusal? = nil) {
        let source = request.target.map { configuration.source(of: $0.device) }
            ?? configuration.gatewaySource
        var fields: [(String, JSONValue)] = [
            ("issuer", .string(request.issuer ?? request.envelope?.issuer ?? "unknown")),
            ("command_id", request.envelope.map { .string($0.id) } ?? .null),
            ("command", .string(Self.printable(request.command ?? ""))),
        ]
        if request.target == nil, let device = request.device { fields.append(("device", .string(Self.printable(device)))) }
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
