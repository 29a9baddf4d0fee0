import AccessModel
import Dispatch
import Foundation
import Journal
import Logging
import MQTTPublisher
import RequestAuthority
import Synchronization

/// Replay (SPEC 4.2): a subscriber that was away longer than its broker kept messages asks for history; the
/// gateway re-publishes the matching journal events with their original ids and payloads to
/// `{response topic}/{device}/event/{type}`, then replies `{"id","status":"done","count","oldest_available"}`.
///
/// Requests are signed and authorised like commands (`RequestAuthority`, permission `replay` per device); they are
/// served one at a time on a thread of their own, reading the journal through a read-only connection. Live events
/// keep priority: a replayed event is sent only while fewer than half of the in-flight window hold live events and at
/// most a quarter hold replayed ones, and never faster than `replay.max_rate`.
public final class ReplayService: Sendable {
    let configuration: GatewayConfiguration
    /// The issuers of the `commands:` section in force; a reload replaces them (`replace(authority:)`).
    let authorities: Mutex<RequestAuthority>
    var authority: RequestAuthority { authorities.withLock { $0 } }
    let journalPath: String
    let mqtt: MQTTPublisher
    let logger: Logger
    let queue = DispatchQueue(label: "accessgw.replay")
    static let page = 500

    public init(configuration: GatewayConfiguration, mqtt: MQTTPublisher, logger: Logger) {
        self.configuration = configuration
        authorities = Mutex(configuration.commands.authority)
        journalPath = configuration.journalPath
        self.mqtt = mqtt
        var logger = logger
        logger[metadataKey: "component"] = "replay"
        self.logger = logger
    }

    /// Applies the issuers of a reloaded `commands:` section from the next request on.
    public func replace(authority: RequestAuthority) {
        authorities.withLock { $0 = authority }
    }

    public func start() {
        logger.info("accepting replay requests on \(configuration.replayTopic), at most \(configuration.replay.maxRate) events/s")
        mqtt.subscribe(configuration.replayTopic) { [self] message in queue.async { self.serve(message) } }
    }

    /// A request as decided: what to replay, or why not.
    struct Plan {
        var id: String
        var issuer: String
        /// nil when the request's `devices` match none the issuer may replay: nothing to send.
        var filter: JournalFilter?
    }

    func decide(_ message: IncomingMessage) -> Result<Plan, Rejection> {
        if message.retained { return .failure(.retained) }
        guard case let .success(envelope) = RequestEnvelope.parse(message.payload, requireTime: false) else { return .failure(.malformed) }
        let decision = authority.authenticate(issuer: envelope.issuer, topic: message.topic, payload: message.payload,
                                              signature: message.signature)
        guard case let .accepted(issuer) = decision else { return .failure(.unauthenticated) }
        guard case let .success(request) = Self.fields(of: envelope) else { return .failure(.malformed) }
        let (from, to, devices, types) = (request.from, request.to, request.devices, request.types)
        // Only devices this issuer may replay, and at least one of them; the gateway's own events count as a device.
        let permitted = configuration.devices.map(\.id).filter {
            authority.authorise(issuer: issuer, device: $0, action: "replay").isAccepted
        }
        guard !permitted.isEmpty else { return .failure(.notPermitted) }
        let sources = permitted + (authority.authorise(issuer: issuer, device: configuration.gatewayID, action: "replay").isAccepted
            ? [configuration.gatewayID] : [])
        let requested = devices.isEmpty ? sources : sources.filter { id in devices.contains { $0.matches(id) } }
        var filter = JournalFilter(devices: requested, types: types, since: from)
        filter.until = to
        return .success(Plan(id: envelope.id, issuer: issuer, filter: requested.isEmpty ? nil : filter))
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
        guard let responseTopic = message.responseTopic, !responseTopic.isEmpty, !responseTopic.contains("+"), !responseTopic.contains("#")
        else {
            logger.warning("replay request on \(message.topic) without a usable Response Topic: ignored")
            return
        }
        func reply(_ fields: [(String, JSONValue)]) {
            var bytes: [UInt8] = []
            JSONValue.object(fields).write(to: &bytes)
            mqtt.publishReply(topic: responseTopic, payload: bytes, correlationData: message.correlationData)
        }
        let requestID = (try? JSONValue(parsing: message.payload, maxDepth: 8))?["id"].flatMap { value -> String? in
            if case let .string(text) = value, RequestEnvelope.isRequestID(text) { text } else { nil }
        }
        switch decide(message) {
        case let .failure(rejection):
            logger.warning("replay request \(requestID ?? "-") rejected: \(rejection.rawValue)")
            reply([("id", requestID.map(JSONValue.string) ?? .null), ("status", .string("rejected")), ("reason", .string(rejection.rawValue))])
        case let .success(plan):
            let started = ContinuousClock.now
            do {
                let (count, oldest) = try replay(plan, to: responseTopic)
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
    func replay(_ plan: Plan, to responseTopic: String) throws -> (count: Int, oldest: Timestamp?) {
        let reader = try JournalReader(path: journalPath)
        let oldest = try reader.oldestRecorded()
        let interval = Duration.seconds(1) / configuration.replay.maxRate
        let window = max(1, configuration.mqtt.maxInflight / 4)
        // Live events are busy while half the window holds them: replay waits for them to drain.
        let liveShare = max(1, configuration.mqtt.maxInflight / 2)
        var pending: [Int32] = []
        var next = ContinuousClock.now
        var count = 0
        guard var filter = plan.filter else { return (0, oldest) }
        filter.afterJournalSeq = 0
        while true {
            filter.limit = Self.page
            let events = try reader.events(filter: filter)
            for event in events {
                // Live first: wait while the live publisher has events to send or replayed ones fill their share.
                while true {
                    let state = mqtt.replayWindow(pending: &pending)
                    if pending.count < window, state.connected, state.liveInflight < liveShare { break }
                    usleep(1000)
                }
                let now = ContinuousClock.now
                if next > now { Thread.sleep(forTimeInterval: Double((next - now) / .microseconds(1)) / 1_000_000) }
                next = max(next, now) + interval
                if let mid = mqtt.publishReplayed(topic: "\(responseTopic)/\(event.device)/event/\(event.type)", payload: event.payload) {
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
