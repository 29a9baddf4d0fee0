import AccessModel
@testable import Gateway
import MQTTPublisher
import RequestAuthority
import Testing

/// The pure decisions of replay (SPEC 4.2, issue 19 items 5 and 6) and of the retry of refused events (item 12).
@Suite("replay decisions: freshness, window, who may be answered")
struct ReplayDecisionTests {
    let key: Ed25519PrivateKey
    let authority: RequestAuthority
    let configuration: GatewayConfiguration
    let topic = "accessgw/s1/gateway/gw-01/replay"
    let now = Timestamp(millisecondsSinceEpoch: 1_796_000_000_000)

    init() throws {
        key = try Ed25519PrivateKey()
        authority = RequestAuthority(issuers: [
            Issuer(id: "pm", publicKey: key.publicKey, allow: [AllowRule(devices: [NamePattern("door-*")!], commands: ["replay"])]),
        ])
        configuration = try GatewayConfiguration.parse(ConfigurationGoldenTests.minimal(profileDirs: ConfigurationGoldenTests.devices),
                                                       file: "gateway.yaml")
    }

    func message(_ payload: String, signed: Bool = true, retained: Bool = false) throws -> IncomingMessage {
        let signature = signed ? try RequestAuthority.signature(topic: topic, payload: Array(payload.utf8), key: key) : nil
        return IncomingMessage(topic: topic, payload: Array(payload.utf8), retained: retained, signature: signature,
                               responseTopic: "accessgw/s1/reply/pm/1")
    }

    func decide(_ payload: String, signed: Bool = true, retained: Bool = false) throws -> Result<ReplayService.Plan, ReplayService.Refusal> {
        ReplayService.decide(try message(payload, signed: signed, retained: retained), configuration: configuration, authority: authority, now: now)
    }

    func refused(_ payload: String, signed: Bool = true, retained: Bool = false) throws -> ReplayService.Refusal? {
        if case let .failure(refusal) = try decide(payload, signed: signed, retained: retained) { refusal } else { nil }
    }

    func time(_ offsetMillis: Int64) -> String { Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch + offsetMillis).rfc3339 }

    @Test func theWindowEndsAtTheRequestsTimeWhateverItsTo() throws {
        let request = #"{"id":"r1","issuer":"pm","time":"\#(time(-1000))","ttl_ms":30000,"from":"\#(time(-3_600_000))","to":"2099-01-01T00:00:00Z"}"#
        guard case let .success(plan) = try decide(request) else { Issue.record("not served"); return }
        #expect(plan.filter?.until == Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 1000))
        #expect(plan.replyIssuer == "pm" && plan.filter?.devices == ["door-1"])
        #expect(ReplayService.until(requested: nil, time: now) == now)
        let earlier = Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 5)
        #expect(ReplayService.until(requested: earlier, time: now) == earlier)
    }

    @Test func aStaleRequestIsExpiredAndOneFromTheFutureIsClock() throws {
        let stale = #"{"id":"r2","issuer":"pm","time":"\#(time(-120_000))","ttl_ms":10000,"from":"\#(time(-3_600_000))"}"#
        #expect(try refused(stale) == ReplayService.Refusal(id: "r2", status: "expired", reason: nil, replyIssuer: "pm"))
        // ttl_ms beyond max_ttl (60 s) is cut to it.
        let long = #"{"id":"r3","issuer":"pm","time":"\#(time(-61_000))","ttl_ms":86400000,"from":"\#(time(-3_600_000))"}"#
        #expect(try refused(long) == ReplayService.Refusal(id: "r3", status: "expired", reason: nil, replyIssuer: "pm"))
        let future = #"{"id":"r4","issuer":"pm","time":"\#(time(60_000))","from":"\#(time(-3_600_000))"}"#
        #expect(try refused(future) == ReplayService.Refusal(id: "r4", status: "rejected", reason: "clock", replyIssuer: "pm"))
    }

    @Test func nothingBeforeAuthenticationNamesAnIssuerToAnswer() throws {
        let request = #"{"id":"r5","issuer":"pm","time":"\#(time(0))","from":"\#(time(-3_600_000))"}"#
        #expect(try refused(request, signed: false) == ReplayService.Refusal(id: "r5", status: "rejected", reason: "unauthenticated", replyIssuer: nil))
        #expect(try refused(request, retained: true) == ReplayService.Refusal(id: "r5", status: "rejected", reason: "retained", replyIssuer: nil))
        let timeless = #"{"id":"r6","issuer":"pm","from":"\#(time(-3_600_000))"}"#
        #expect(try refused(timeless) == ReplayService.Refusal(id: "r6", status: "rejected", reason: "malformed", replyIssuer: nil))
    }

    @Test func requestsOverSixteenKiBAreNotQueued() {
        #expect(ReplayService.admits(payloadBytes: 16 * 1024))
        #expect(!ReplayService.admits(payloadBytes: 16 * 1024 + 1))
    }

    @Test func refusedEventsAreRetriedWithBackoffThatStartsOverOnDelivery() {
        var delay = RefusedRetrier.initialDelay
        var delays: [Duration] = []
        for _ in 0..<10 {
            delay = RefusedRetrier.nextDelay(after: delay, tried: 5, delivered: 0)
            delays.append(delay)
        }
        #expect(delays.prefix(3) == [.seconds(4), .seconds(8), .seconds(16)])
        #expect(delays.last == RefusedRetrier.maximumDelay)
        #expect(RefusedRetrier.nextDelay(after: .seconds(300), tried: 5, delivered: 1) == RefusedRetrier.initialDelay)
        // Nothing refused to send: no backoff builds up, so a refusal later is retried soon.
        #expect(RefusedRetrier.nextDelay(after: .seconds(300), tried: 0, delivered: 0) == RefusedRetrier.initialDelay)
    }
}
