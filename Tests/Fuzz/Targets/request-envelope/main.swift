import AccessModel
import DeviceProfiles
import FuzzSupport
import Gateway
import RequestAuthority

/// An MQTT request payload as the command intake (SPEC 4.1) and the replay service (SPEC 4.2) read it, through every
/// step that looks at the payload: `RequestEnvelope.parse` (`JSONValue(parsing:)`, ids, strict RFC 3339 `time`,
/// `ttl_ms`), the Ed25519 check of the `signature` user property, then (as for an issuer whose key signed garbage)
/// a command's `args` against every command of the vendor profiles, the deadline and timing rules, or a replay's
/// `from`/`to`/`devices`/`types` and the globs matched against device ids. The first byte picks command or replay;
/// the payload ends at the first NUL, and what follows is the signature text, also tried as the Response Topic
/// (`ReplyTopic.refusal`: only `{prefix}/{site}/reply/{issuer}/` is ever answered).
let commands = ["face-door", "plate-reader", "elevator"].flatMap {
    (try! DeviceProfile.load(path: "\(Repository.devices)/\($0).yaml")).commands?.commands ?? []
}
let key = try! Ed25519PrivateKey()
let authority = RequestAuthority(issuers: [
    Issuer(id: "ops-1", publicKey: key.publicKey, allow: [AllowRule(devices: [NamePattern("door-*")!], commands: ["open", "replay"])]),
])
let now = Timestamp(millisecondsSinceEpoch: 1_795_000_000_000)

fuzz { input in
    let (kind, rest) = input.split(choices: 2)
    let cut = rest.firstIndex(of: 0) ?? rest.endIndex
    let payload = UnsafeBufferPointer(rebasing: rest[rest.startIndex..<cut])
    let signature = cut < rest.endIndex ? String(decoding: UnsafeBufferPointer(rebasing: rest[(cut + 1)...]), as: UTF8.self) : nil
    let topic = kind == 0 ? "accessgw/site/door-3e/command/open" : "accessgw/site/gw-1/replay"
    guard case let .success(envelope) = RequestEnvelope.parse(payload, requireTime: true) else { return }
    _ = ReplyTopic.refusal(signature ?? "", prefix: "accessgw", site: "site", issuer: envelope.issuer)
    _ = authority.authenticate(issuer: envelope.issuer, topic: topic, payload: payload, signature: signature)
    _ = authority.authorise(issuer: envelope.issuer, device: "door-3e", action: kind == 0 ? "open" : "replay")
    if kind == 0 {
        var args: [(String, JSONValue)] = []
        if let value = envelope.body["args"] {
            guard case let .object(members) = value else { return }
            args = members
        }
        for command in commands { _ = command.argumentWord(for: args) }
        if let deadline = envelope.deadline(defaultTTL: 10_000, maxTTL: 60_000), let sent = envelope.time {
            _ = RequestAuthority.timing(sent: sent, deadline: deadline, now: now)
        }
    } else if case let .success(fields) = ReplayService.fields(of: envelope) {
        if let deadline = envelope.deadline(defaultTTL: 10_000, maxTTL: 60_000), let sent = envelope.time {
            _ = RequestAuthority.timing(sent: sent, deadline: deadline, now: now)
        }
        for id in ["door-3e", "lane-1", "gw-1"] {
            _ = fields.devices.contains { $0.matches(id) }
        }
        _ = fields.types.contains { $0.matches("door.opened") }
        _ = fields.to.map { $0 < fields.from }
    }
}
