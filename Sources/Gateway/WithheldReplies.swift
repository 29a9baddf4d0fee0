import Metrics
import RequestAuthority

/// Replies the gateway did not send although the request asked for one (SPEC 4.1): the request was not
/// authenticated, or its Response Topic was outside `{prefix}/{site}/reply/{issuer}/`. Counted by request kind
/// and reason (`accessgw_replies_withheld_total`); the request itself is still audited.
struct WithheldReplies: Sendable {
    let prefix: String
    let site: String
    let request: String

    init(configuration: GatewayConfiguration, request: String) {
        prefix = configuration.mqtt.topicPrefix
        site = configuration.site
        self.request = request
    }

    /// Nil when `responseTopic` may be answered for a request authenticated as naming `issuer` (nil: not
    /// authenticated); otherwise why not, counted.
    func refusal(_ responseTopic: String, issuer: String?) -> ReplyTopic.Refusal? {
        guard let refusal = ReplyTopic.refusal(responseTopic, prefix: prefix, site: site, issuer: issuer) else { return nil }
        Counter(label: "accessgw_replies_withheld_total", dimensions: [("request", request), ("reason", refusal.rawValue)]).increment()
        return refusal
    }
}
