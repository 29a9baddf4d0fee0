/// Where the gateway may answer a request (SPEC 4.1, 4.2): only under `{prefix}/{site}/reply/{issuer}/`, the issuer
/// being the one the authenticated payload names, so a stranger can never aim a reply (or a replay) at the site's
/// event, state, status, command or replay topics. Pure: the intake and replay call it before every reply.
public enum ReplyTopic {
    /// Why a Response Topic is not used; the request is still decided and audited, it only gets no reply.
    public enum Refusal: String, Sendable, Hashable {
        /// The request was not authenticated: nothing is published for it.
        case unauthenticated
        /// Outside `{prefix}/{site}/reply/{issuer}/`, with a wildcard, or nothing after the issuer's level.
        case outsideReplyTree = "outside_reply_tree"
    }

    /// The tree an issuer's replies go under: `{prefix}/{site}/reply/{issuer}/`.
    public static func tree(prefix: String, site: String, issuer: String) -> String {
        "\(prefix)/\(site)/reply/\(issuer)/"
    }

    /// Nil when `topic` may carry the reply to a request authenticated as naming `issuer` (nil: not authenticated).
    /// Replayed events go below the same topic (`{topic}/{device}/event/{type}`), so the whole subtree must be the
    /// issuer's: no wildcard, no empty level, no NUL, at most 512 bytes.
    public static func refusal(_ topic: String, prefix: String, site: String, issuer: String?) -> Refusal? {
        guard let issuer else { return .unauthenticated }
        let tree = tree(prefix: prefix, site: site, issuer: issuer)
        guard topic.utf8.count <= 512, topic.hasPrefix(tree) else { return .outsideReplyTree }
        let rest = topic.utf8.dropFirst(tree.utf8.count)
        guard !rest.isEmpty, !rest.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "#") || $0 == 0 }),
              !rest.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).contains(where: \.isEmpty),
              // A device named `reply` would put its own topics here: never answer on them.
              !isGatewayTopic(topic, prefix: prefix, site: site)
        else { return .outsideReplyTree }
        return nil
    }

    /// The gateway's own topics: `{device}/event/#`, `{device}/state`, `{device}/command/+`, `gateway/+/status|replay`.
    static func isGatewayTopic(_ topic: String, prefix: String, site: String) -> Bool {
        let base = "\(prefix)/\(site)/"
        guard topic.hasPrefix(base) else { return false }
        let levels = topic.dropFirst(base.count).split(separator: "/", omittingEmptySubsequences: false)
        guard levels.count >= 2 else { return false }
        switch levels[1] {
        case "event": return true
        case "state": return levels.count == 2
        case "command": return levels.count == 3
        default: return levels[0] == "gateway" && levels.count == 3 && (levels[2] == "status" || levels[2] == "replay")
        }
    }
}
