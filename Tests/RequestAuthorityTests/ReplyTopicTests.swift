import RequestAuthority
import Testing

/// Issue 19 items 5 and 7: replies go only under `{prefix}/{site}/reply/{issuer}/`, and never before authentication.
@Suite("reply topics: only the issuer's reply tree, only after authentication")
struct ReplyTopicTests {
    func refusal(_ topic: String, issuer: String? = "pm-kunming") -> ReplyTopic.Refusal? {
        ReplyTopic.refusal(topic, prefix: "accessgw", site: "kunming-guandu", issuer: issuer)
    }

    @Test func aTopicUnderTheIssuersReplyTreeIsUsed() {
        #expect(refusal("accessgw/kunming-guandu/reply/pm-kunming/7f3a") == nil)
        #expect(refusal("accessgw/kunming-guandu/reply/pm-kunming/a/b/c") == nil)
    }

    @Test func anUnauthenticatedRequestGetsNoReplyWhateverItsTopic() {
        #expect(refusal("accessgw/kunming-guandu/reply/pm-kunming/7f3a", issuer: nil) == .unauthenticated)
    }

    @Test func theSitesOwnTopicsAndOtherTreesAreRefused() {
        for topic in [
            "accessgw/kunming-guandu/door-3e/event/alarm.forced",
            "accessgw/kunming-guandu/door-3e/state",
            "accessgw/kunming-guandu/gateway/gw-01/status",
            "accessgw/kunming-guandu/gateway/gw-01/replay",
            "accessgw/kunming-guandu/door-3e/command/open",
            "replies/pm-kunming",
            "accessgw/kunming-guandu/reply/other-issuer/1",
            "accessgw/kunming-guandu/reply/pm-kunming",
            "accessgw/kunming-guandu/reply/pm-kunming/",
            "accessgw/kunming-guandu/reply/pm-kunming//x",
            "accessgw/kunming-guandu/reply/pm-kunming/+",
            "accessgw/kunming-guandu/reply/pm-kunming/#",
            "accessgw/other-site/reply/pm-kunming/1",
            "accessgw/kunming-guandu/reply/pm-kunming-evil/1",
        ] {
            #expect(refusal(topic) == .outsideReplyTree, "\(topic)")
        }
    }

    @Test func aDeviceNamedReplyKeepsItsOwnTopics() {
        // Issuer "event" and a device "reply": the event topic of that device is not a reply topic.
        #expect(ReplyTopic.refusal("accessgw/s/reply/event/access.granted", prefix: "accessgw", site: "s", issuer: "event")
            == .outsideReplyTree)
    }
}
