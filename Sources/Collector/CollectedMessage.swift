import AccessModel

/// One MQTT message the collector received, read into what the database stores (pure: no I/O, the fuzz target's
/// entry point). Topics per SPEC section 4: `{prefix}/{site}/{device}/event/{type}`, `{prefix}/{site}/{device}/state`
/// and `{prefix}/{site}/gateway/{gateway}/status`.
public enum CollectedMessage: Sendable, Equatable {
    case event(EventRow)
    case state(DeviceStateRow)
    case status(GatewayStatusRow)
    /// Not stored: why, in one sentence naming the topic.
    case rejected(Rejection)

    /// Why a message is not stored; `reason` is the metric label, `message` the log line.
    public struct Rejection: Sendable, Equatable, Error, CustomStringConvertible {
        public var reason: String
        public var message: String
        public var description: String { message }
    }

    /// Reads `payload` received on `topic` under `prefix` (the configured `topic_prefix`).
    public static func read(topic: String, payload: [UInt8], prefix: String) -> CollectedMessage {
        let levels = topic.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let prefixLevels = prefix.split(separator: "/", omittingEmptySubsequences: false).count
        guard levels.count > prefixLevels, levels[..<prefixLevels].joined(separator: "/") == prefix else {
            return reject("topic", "topic \(quoted(topic)) is not under \(prefix)/")
        }
        let rest = Array(levels[prefixLevels...])
        switch rest.count {
        case 4 where rest[2] == "event":
            return readEvent(topic: topic, site: rest[0], device: rest[1], payload: payload)
        case 3 where rest[2] == "state":
            return readObject(topic: topic, payload: payload).map { .state(DeviceStateRow(site: rest[0], device: rest[1], payload: $0)) }
        case 4 where rest[1] == "gateway" && rest[3] == "status":
            return readObject(topic: topic, payload: payload).map { object in
                var state: String?
                if case let .string(text)? = object["state"] { state = text }
                return .status(GatewayStatusRow(site: rest[0], gateway: rest[2], state: state, payload: object))
            }
        default:
            return reject("topic", "topic \(quoted(topic)) is neither an event, a state nor a gateway status")
        }
    }

    static func readEvent(topic: String, site: String, device: String, payload: [UInt8]) -> CollectedMessage {
        let object: JSONValue
        switch readObject(topic: topic, payload: payload) {
        case let .success(value): object = value
        case let .failure(rejection): return .rejected(rejection)
        }
        func text(_ key: String) -> String? {
            if case let .string(value)? = object[key], !value.isEmpty { return value }
            return nil
        }
        guard let id = text("id") else { return reject("no_id", "\(quoted(topic)): a CloudEvent without a string id") }
        guard id.utf8.count <= 512 else { return reject("no_id", "\(quoted(topic)): id longer than 512 bytes") }
        guard let source = text("source"), let type = text("type") else {
            return reject("not_cloudevent", "\(quoted(topic)): event \(quoted(id)) lacks source or type")
        }
        let data = object["data"]
        func dataText(_ key: String) -> String? {
            if case let .string(value)? = data?[key], !value.isEmpty { return value }
            return nil
        }
        var time: Timestamp?
        if let value = text("time") {
            guard let parsed = Timestamp(rfc3339: value) else {
                return reject("bad_time", "\(quoted(topic)): event \(quoted(id)) has time \(quoted(value)), not RFC 3339")
            }
            time = parsed
        }
        var gwseq: Int64?
        switch object["gwseq"] {
        case nil, .null?: break
        case let .int(value)? where value > 0: gwseq = value
        default: return reject("bad_gwseq", "\(quoted(topic)): event \(quoted(id)) has a gwseq that is not a positive integer")
        }
        let gwepoch = text("gwepoch")
        if (gwseq == nil) != (gwepoch == nil) {
            return reject("bad_gwseq", "\(quoted(topic)): event \(quoted(id)) has only one of gwepoch and gwseq")
        }
        var row = EventRow(id: id, source: source, type: type, time: time, site: dataText("site") ?? site,
                           gateway: dataText("gateway"), device: dataText("device") ?? device,
                           gwepoch: gwepoch, gwseq: gwseq, recordedTime: text("recordedtime").flatMap(Timestamp.init(rfc3339:)),
                           event: object)
        switch type {
        case "gateway.erased":
            guard let erases = dataText("erases") else {
                return reject("bad_erasure", "\(quoted(topic)): gateway.erased \(quoted(id)) names no data.erases")
            }
            row.erases = erases
        case "gateway.events_unconfirmed_expired":
            guard case let .int(from)? = data?["from_gwseq"], case let .int(to)? = data?["to_gwseq"], from >= 1, from <= to else {
                return reject("bad_expiry", "\(quoted(topic)): \(type) \(quoted(id)) lacks from_gwseq ≤ to_gwseq")
            }
            row.expired = from...to
        default:
            break
        }
        return .event(row)
    }

    static func readObject(topic: String, payload: [UInt8]) -> Result<JSONValue, Rejection> {
        guard String(validating: payload, as: UTF8.self) != nil else {
            return .failure(Rejection(reason: "not_utf8", message: "\(quoted(topic)): payload of \(payload.count) bytes is not UTF-8"))
        }
        // PostgreSQL's jsonb and text refuse the NUL character; one such event must not fail a whole batch.
        if containsEscapedNUL(payload) {
            return .failure(Rejection(reason: "nul", message: "\(quoted(topic)): payload holds \\u0000, which PostgreSQL cannot store"))
        }
        let value: JSONValue
        do { value = try JSONValue(parsing: payload, maxDepth: 32) } catch {
            return .failure(Rejection(reason: "not_json", message: "\(quoted(topic)): payload is not JSON (\(error))"))
        }
        guard case .object = value else {
            return .failure(Rejection(reason: "not_json", message: "\(quoted(topic)): payload is not a JSON object"))
        }
        return .success(value)
    }

    /// Whether `bytes` contain the JSON escape `\u0000` (any case of hex digits; an escaped backslash before it is
    /// rare enough that refusing it too is fine).
    static func containsEscapedNUL(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 6 else { return false }
        for index in 0...(bytes.count - 6) where bytes[index] == UInt8(ascii: "\\") && bytes[index + 1] | 0x20 == UInt8(ascii: "u")
            && bytes[index + 2] == UInt8(ascii: "0") && bytes[index + 3] == UInt8(ascii: "0")
            && bytes[index + 4] == UInt8(ascii: "0") && bytes[index + 5] == UInt8(ascii: "0") {
            return true
        }
        return false
    }

    static func reject(_ reason: String, _ message: String) -> CollectedMessage {
        .rejected(Rejection(reason: reason, message: message))
    }

    /// A topic or id as it goes into a log line: quoted, with control characters escaped, at most 200 characters.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars.prefix(200) {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if scalar.properties.generalCategory == .control { out += "\\u{\(String(scalar.value, radix: 16))}" } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + (text.unicodeScalars.count > 200 ? "…\"" : "\"")
    }
}

extension Result where Failure == CollectedMessage.Rejection {
    func map(_ body: (Success) -> CollectedMessage) -> CollectedMessage {
        switch self {
        case let .success(value): body(value)
        case let .failure(rejection): .rejected(rejection)
        }
    }
}
