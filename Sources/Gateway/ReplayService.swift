import AccessModel
import Dispatch
import Foundation
import Journal
import Logging
import Metrics
import MQTTPublisher
import RequestAuthority
import Synchronization

/// Replay (SPEC 4.2): a subscriber that was away longer than its broker kept messages asks for history; the
/// gateway re-publishes the matching journal events with their original ids and payloads to
/// `{response topic}/{device}/event/{type}`, then replies `{"id","status":"done","count","oldest_available"}`.
///
/// Requests are signed and authorised like commands (`RequestAuthority`, permission `replay` per device), fresh until
/// `time` + `ttl_ms`, served once per issuer and id (`Journal.claimReplay`), never past their `time`, and answered
/// only under `{prefix}/{site}/reply/{issuer}/` once authenticated (`ReplyTopic`). At most 4 wait while one runs and
/// none over 16 KiB is queued. They are served one at a time on a thread of their own, reading the journal through a
/// read-only connection, each event as the privacy settings in force allow (`PrivacyFilter.replayed`). Live events
/// keep priority: a replayed event is sent only while fewer than half of the in-flight window hold live events and at
/// most a quarter hold replayed ones, and never faster than `replay.max_rate`.
public final class ReplayService: Sendable {
    /// The configuration in force and its authority: a reload replaces both (`replace(configuration:)`), so devices it
    /// adds are replayed and its issuers decide from the next request on.
    let section: Mutex<(configuration: GatewayConfiguration, authority: RequestAuthority)>
    var configuration: GatewayConfiguration { section.withLock { $0.configuration } }
    var authority: RequestAuthority { section.withLock { $0.authority } }
    let journal: Journal
    let journalPath: String
    let mqtt: MQTTPublisher
    let logger: Logger
    let queue = DispatchQueue(label: "accessgw.replay")
    static let page = 500
    /// Requests that may wait while one runs (SPEC 4.2); more are counted and dropped.
    static let maximumWaiting = 4
    /// Requests waiting or running.
    let queued = Atomic<Int>(0)
    let replies: WithheldReplies

    public init(configuration: GatewayConfiguration, journal: Journal, mqtt: MQTTPublisher, logger: Logger) {
        section = Mutex((configuration, configuration.commands.authority))
        self.journal = journal
        journalPath = configuration.journalPath
        self.mqtt = mqtt
        replies = WithheldReplies(configuration: configuration, request: "replay")
        var logger = logger
        logger[metadataKey: "component"] = "replay"
        self.logger = logger
    }

    /// Applies a reloaded configuration from the next request on: its issuers, and its devices (SIGHUP may add some).
    public func replace(configuration: GatewayConfiguration) {
        section.withLock { $0 = (configuration, configuration.commands.authority) }
    }

    public func start() {
        let configuration = configuration
        logger.info("accepting replay requests on \(configuration.replayTopic), at most \(configuration.replay.maxRate) events/s")
        mqtt.subscribe(configuration.replayTopic) { [self] message in receive(message) }
    }

    /// Runs on libmosquitto's network thread: refuses what is over 16 KiB and what finds 4 requests waiting, both
    /// counted, before anything is queued (SPEC 4.2); the rest waits for the replay thread.
    func receive(_ message: IncomingMessage) {
        guard Self.admits(payloadBytes: message.payload.count) else { return drop(message, reason: "too_large") }
        guard queued.add(1, ordering: .acquiringAndReleasing).newValue <= 1 + Self.maximumWaiting else {
            queued.subtract(1, ordering: .acquiringAndReleasing)
            return drop(message, reason: "backlog")
        }
        queue.async { [self] in
            defer { queued.subtract(1, ordering: .acquiringAndReleasing) }
            serve(message)
        }
    }

    /// Whether a request of `payloadBytes` may be queued at all: at most 16 KiB (`RequestEnvelope.maxPayloadBytes`).
    static func admits(payloadBytes: Int) -> Bool { payloadBytes <= RequestEnvelope.maxPayloadBytes }

    func drop(_ message: IncomingMessage, reason: String) {
        Counter(label: "accessgw_replay_requests_dropped_total", dimensions: [("reason", reason)]).increment()
        logger.debug("replay request of \(message.payload.count) bytes dropped: \(reason)")
    }

    /// A request as decided: what to replay, or why not.
    struct Plan {
        var id: String
        var issuer: String
        /// The issuer the payload names: replies go under its reply tree.
        var replyIssuer: String
        /// nil when the request's `devices` match none the issuer may replay: nothing to send.
        var filter: JournalFilter?
    }

    /// A request refused: the reply's `status` and `reason`, and, once authenticated, the issuer whose reply tree
    /// may carry the answer (nil: no reply at all, SPEC 4.1).
    struct Refusal: Error, Equatable {
        var id: String?
        var status: String
        var reason: String?
        var replyIssuer: String?
    }

    /// SPEC 4.2 in order: retained, malformed, unauthenticated, not permitted, clock and deadline (4.1 rule 6). Pure:
    /// the id memory (rule 7) is asked afterwards. `to` defaults to, and is capped at, the request's `time`, so an
    /// old request never reaches into newer history.
    static func decide(_ message: IncomingMessage, configuration: GatewayConfiguration, authority: RequestAuthority,
                       now: Timestamp) -> Result<Plan, Refusal> {
        let id = (try? JSONValue(parsing: message.payload, maxDepth: 8))?["id"].flatMap { value -> String? in
            if case let .string(text) = value, RequestEnvelope.isRequestID(text) { text } else { nil }
        }
        func refused(_ status: String, _ reason: String?, reply issuer: String? = nil) -> Result<Plan, Refusal> {
            .failure(Refusal(id: id, status: status, reason: reason, replyIssuer: issuer))
        }
        if message.retained { return refused("rejected", Rejection.retained.rawValue) }
        guard case let .success(envelope) = RequestEnvelope.parse(message.payload, requireTime: true), let time = envelope.time
        else { return refused("rejected", Rejection.malformed.rawValue) }
        let decision = authority.authenticate(issuer: envelope.issuer, topic: message.topic, payload: message.payload,
                                              signature: message.signature)
        guard case let .accepted(issuer) = decision else { return refused("rejected", Rejection.unauthenticated.rawValue) }
        let named = envelope.issuer
        guard case let .success(request) = Self.fields(of: envelope) else { return refused("rejected", Rejection.malformed.rawValue, reply: named) }
        // Only devices this issuer may replay, and at least one of them; the gateway's own events count as a device.
        let permitted = configuration.devices.map(\.id).filter {
            authority.authorise(issuer: issuer, device: $0, action: "replay").isAccepted
        }
        guard !permitted.isEmpty else { return refused("rejected", Rejection.notPermitted.rawValue, reply: named) }
        let deadline = envelope.deadline(defaultTTL: configuration.commands.defaultTTLMillis, maxTTL: configuration.commands.maxTTLMillis)!
        switch RequestAuthority.timing(sent: time, deadline: deadline, now: now) {
        case .rejected(let rejection)?: return refused("rejected", rejection.rawValue, reply: named)
        case .expired?: return refused("expired", nil, reply: named)
        default: break
        }
        let sources = permitted + (authority.authorise(issuer: issuer, device: configuration.gatewayID, action: "replay").isAccepted
            ? [configuration.gatewayID] : [])
        let requested = request.devices.isEmpty ? sources : sources.filter { id in request.devices.contains { $0.matches(id) } }
        var filter = JournalFilter(devices: requested, types: request.types, since: request.from)
        filter.until = Self.until(requested: request.to, time: time)
        return .success(Plan(id: envelope.id, issuer: issuer, replyIssuer: named, filter: requested.isEmpty ? nil : filter))
    }

    /// The end of the window (exclusive): the request's `to`, but never past its `time`.
    static func until(requested to: Timestamp?, time: Timestamp) -> Timestamp {
        guard let to else { return time }
        return min(to, time)
    }

    /// What a replay request asks for beyond its envelope (SPEC 4.2).
    public struct RequestFields: Sendable {
        public var from: Timestamp
        public var to: Timestamp?
        public var devices: [NamePattern]
        public var types: [NamePattern]
    }

    /// Reads `from` (required), `to`, `devices` and `types` (at most 64 globs each) of a request; `.malformed` when
    /// any is of the wrong kind. Pure: the fuzz target `request-envelope` calls it on arbitrary payloads.
    public static func fields(of envelope: RequestEnvelope) -> Result<RequestFields, Rejection> {
        func time(_ key: String) -> Result<Timestamp?, Rejection> {
            switch envelope.body[key] {
            case nil, .null?: return .success(nil)
            case let .string(text)?: return Timestamp(strictRFC3339: text).map { .success($0) } ?? .failure(.malformed)
            default: return .failure(.malformed)
            }
        }
        func globs(_ key: String) -> Result<[NamePattern], Rejection> {
            switch envelope.body[key] {
            case nil, .null?: return .success([])
            case let .array(items)?:
                let patterns = items.compactMap { item -> NamePattern? in if case let .string(text) = item { NamePattern(text) } else { nil } }
                return patterns.count == items.count && patterns.count <= 64 ? .success(patterns) : .failure(.malformed)
            default: return .failure(.malformed)
            }
        }
        guard case let .success(from) = time("from"), let from, case let .success(to) = time("to"),
              case let .success(devices) = globs("devices"), case let .success(types) = globs("types")
        else { return .failure(.malformed) }
        return .success(RequestFields(from: from, to: to, devices: devices, types: types))
    }

    func serve(_ message: IncomingMessage) {
        guard let responseTopic = message.responseTopic, !responseTopic.isEmpty else {
            logger.warning("replay request on \(message.topic) without a Response Topic: ignored")
            return
        }
        let (configuration, authority) = section.withLock { $0 }
        let now = Timestamp.now
        var decided = Self.decide(message, configuration: configuration, authority: authority, now: now)
        // The reply and the events go only under the authenticated issuer's reply tree (SPEC 4.1, 4.2).
        let replyIssuer: String? = switch decided {
        case let .success(plan): plan.replyIssuer
        case let .failure(refusal): refusal.replyIssuer
        }
        if let withheld = replies.refusal(responseTopic, issuer: replyIssuer) {
            let id: String? = switch decided {
            case let .success(plan): plan.id
            case let .failure(refusal): refusal.id
            }
            let outcome = if case let .failure(refusal) = decided { refusal.reason ?? refusal.status } else { "not served" }
            logger.warning("replay request \(id ?? "-") \(outcome); no reply to \(CommandIntake.printable(responseTopic)): \(withheld.rawValue)")
            return
        }
        // Rule 7: an id this issuer used before is not served again.
        if case let .success(plan) = decided {
            do {
                if try !journal.claimReplay(issuer: plan.issuer, id: plan.id, received: now) {
                    decided = .failure(Refusal(id: plan.id, status: "rejected", reason: "id_reused", replyIssuer: plan.replyIssuer))
                }
            } catch {
                logger.error("cannot remember replay request \(plan.id): \(error)")
                decided = .failure(Refusal(id: plan.id, status: "rejected", reason: "busy", replyIssuer: plan.replyIssuer))
            }
        }
        func reply(_ fields: [(String, JSONValue)]) {
            var bytes: [UInt8] = []
            JSONValue.object(fields).write(to: &bytes)
            mqtt.publishReply(topic: responseTopic, payload: bytes, correlationData: message.correlationData)
        }
        switch decided {
        case let .failure(refusal):
            logger.warning("replay request \(refusal.id ?? "-") \(refusal.status)\(refusal.reason.map { ": \($0)" } ?? "")")
            var fields: [(String, JSONValue)] = [("id", refusal.id.map(JSONValue.string) ?? .null), ("status", .string(refusal.status))]
            if let reason = refusal.reason { fields.append(("reason", .string(reason))) }
            reply(fields)
        case let .success(plan):
            let started = ContinuousClock.now
            do {
                let (count, oldest) = try replay(plan, to: responseTopic, privacy: PrivacyFilter(configuration.privacy),
                                                 maxRate: configuration.replay.maxRate, maxInflight: configuration.mqtt.maxInflight)
                let seconds = Double((ContinuousClock.now - started) / .milliseconds(1)) / 1000
                logger.info("replay \(plan.id) for \(plan.issuer): \(count) event(s) to \(responseTopic) in \(seconds) s")
                reply([("id", .string(plan.id)), ("status", .string("done")), ("count", .int(Int64(count))),
                       ("oldest_available", oldest.map { .string($0.rfc3339) } ?? .null)])
            } catch {
                logger.error("replay \(plan.id) failed: \(error)")
                reply([("id", .string(plan.id)), ("status", .string("rejected")), ("reason", .string("busy"))])
            }
        }
    }

    /// Streams the plan's events, paced and behind live traffic; returns how many went out and the journal's oldest.
    /// Each event's payload is as `privacy` (the settings in force) allows it now.
    func replay(_ plan: Plan, to responseTopic: String, privacy: PrivacyFilter, maxRate: Int,
                maxInflight: Int) throws -> (count: Int, oldest: Timestamp?) {
        let reader = try JournalReader(path: journalPath)
        let oldest = try reader.oldestRecorded()
        let interval = Duration.seconds(1) / maxRate
        let window = max(1, maxInflight / 4)
        // Live events are busy while half the window holds them: replay waits for them to drain.
        let liveShare = max(1, maxInflight / 2)
        var pending: [Int32] = []
        var next = ContinuousClock.now
        var count = 0
        guard var filter = plan.filter else { return (0, oldest) }
        filter.afterJournalSeq = 0
        while true {
            filter.limit = Self.page
            let events = try reader.events(filter: filter)
            for event in events {
                guard let payload = privacy.replayed(payload: event.payload) else {
                    logger.warning("replay \(plan.id): event \(event.journalSeq) is not a readable CloudEvent; withheld under the privacy settings")
                    continue
                }
                // Live first: wait while the live publisher has events to send or replayed ones fill their share.
                while true {
                    let state = mqtt.replayWindow(pending: &pending)
                    if pending.count < window, state.connected, state.liveInflight < liveShare { break }
                    usleep(1000)
                }
                let now = ContinuousClock.now
                if next > now { Thread.sleep(forTimeInterval: Double((next - now) / .microseconds(1)) / 1_000_000) }
                next = max(next, now) + interval
                if let mid = mqtt.publishReplayed(topic: "\(responseTopic)/\(event.device)/event/\(event.type)", payload: payload) {
                    pending.append(mid)
                    count += 1
                }
            }
            guard events.count == Self.page, let last = events.last else { break }
            filter.afterJournalSeq = last.journalSeq
        }
        while !pending.isEmpty, mqtt.replayWindow(pending: &pending).connected { usleep(1000) }
        return (count, oldest)
    }
}
