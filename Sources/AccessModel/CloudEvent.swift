/// Where events come from: the site, the gateway and one device with its place in the community.
public struct EventSource: Sendable, Equatable {
    public var site: String
    public var gateway: String
    public var device: String
    /// The device kind (profile kind), such as `face-door`; `gateway` for the gateway's own events.
    public var kind: String
    /// Free-form location keys from the configuration, in the order written.
    public var location: [(String, String)]
    /// The gateway runs `--read-only` (it does not acknowledge the device's log): `data.read_only` says so.
    public var readOnly: Bool

    public init(site: String, gateway: String, device: String, kind: String, location: [(String, String)] = [],
                readOnly: Bool = false) {
        self.site = site
        self.gateway = gateway
        self.device = device
        self.kind = kind
        self.location = location
        self.readOnly = readOnly
    }

    public static func == (lhs: EventSource, rhs: EventSource) -> Bool {
        lhs.site == rhs.site && lhs.gateway == rhs.gateway && lhs.device == rhs.device && lhs.kind == rhs.kind
            && lhs.location.elementsEqual(rhs.location, by: ==) && lhs.readOnly == rhs.readOnly
    }
}

/// CloudEvents 1.0 structured JSON for a normalised event (SPEC section 4).
public enum CloudEvent {
    /// The CloudEvents `id` (SPEC section 4), unique for ever and stable for the same device record:
    /// `{site}/{device}/{serial}.{boot}/{seq}` for device records (`{boot}` alone when the device has no serial), so a
    /// redelivery or a replacement gateway re-reading the record gives the same id while a replaced or reset controller
    /// starts new ones; `{site}/{device}/g/{gateway}/{epoch}.{journalSeq}` for the gateway's own events, where `epoch`
    /// is the journal's random hex chosen at its creation, so a recreated journal never repeats an old id.
    public static func id(of event: NormalisedEvent, source: EventSource, journalSeq: Int64, epoch: String) -> String {
        switch event.origin {
        case let .device(boot, seq):
            event.serial.isEmpty ? "\(source.site)/\(source.device)/\(boot)/\(seq)"
                : "\(source.site)/\(source.device)/\(event.serial).\(boot)/\(seq)"
        case .gateway: "\(source.site)/\(source.device)/g/\(source.gateway)/\(epoch).\(journalSeq)"
        }
    }

    /// Where the schemas in the repository's `Schemas/` directory are published; their `$id`s start with it.
    public static let schemaBase = "https://accessgw.example/schemas/"

    /// The version of each event type's schema that differs from 1: a change that could break a subscriber
    /// (a field removed, renamed or retyped, an enumeration narrowed) is a new version, `Schemas/events/{type}/v{n}.json`.
    public static let schemaVersions: [String: Int] = [:]

    /// The `dataschema` of events of `type`.
    public static func dataschema(of type: String) -> String {
        "\(schemaBase)events/\(type)/v\(schemaVersions[type] ?? 1).json"
    }

    /// `data` fields that name or identify a person: their events are classified (CloudEvents `dataclassification`
    /// confidential, `dataregulation` pipl).
    public static let personalFields: Set<String> = ["person", "card", "pass", "plate", "visitor"]

    /// The MQTT topic the event is published on: `{prefix}/{site}/{device}/event/{type}`.
    public static func topic(of event: NormalisedEvent, source: EventSource, prefix: String) -> String {
        topic(type: event.type, source: source, prefix: prefix)
    }

    /// The topic of events of `type` from `source`.
    public static func topic(type: String, source: EventSource, prefix: String) -> String {
        "\(prefix)/\(source.site)/\(source.device)/event/\(type)"
    }

    /// The whole CloudEvent as one line of JSON: the bytes `envelope(...).serialized` gives, written straight into
    /// one buffer without building the tree (the journal writer makes one per event).
    /// `gwseq`, when given, adds the receipts' extension attributes `gwepoch` (= `epoch`) and `gwseq` (SPEC 4.3).
    public static func json(_ event: NormalisedEvent, source: EventSource, journalSeq: Int64, epoch: String,
                            gwseq: Int64? = nil) -> String {
        JSONBuffer.text { write(event, source: source, journalSeq: journalSeq, epoch: epoch, gwseq: gwseq, into: &$0) }
    }

    /// Where the envelope's `data` member starts in a payload `json` wrote: the receipts' attributes go right before.
    static let dataMember = Array(#","data":{"#.utf8)

    /// `payload` (written by `json` without `gwseq`) with `"gwepoch"` and `"gwseq"` inserted before `data`, the same
    /// text `json(..., gwseq:)` gives: the journal writer builds device payloads before it knows their place.
    public static func inserting(gwepoch: String, gwseq: Int64, into payload: String) -> String {
        var payload = payload
        return payload.withUTF8 { bytes -> String in
            guard let at = firstIndex(of: dataMember, in: bytes) else { return String(decoding: bytes, as: UTF8.self) }
            return JSONBuffer.text { out in
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[..<at]))
                writeReceiptAttributes(gwepoch: gwepoch, gwseq: gwseq, into: &out)
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[at...]))
            }
        }
    }

    static func firstIndex(of needle: [UInt8], in bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        var index = 0
        while index <= bytes.count - needle.count {
            if bytes[index] == needle[0] {
                var match = true
                for offset in 1..<needle.count where bytes[index + offset] != needle[offset] {
                    match = false
                    break
                }
                if match { return index }
            }
            index += 1
        }
        return nil
    }

    static func writeReceiptAttributes<Sink: JSONByteSink>(gwepoch: String, gwseq: Int64, into out: inout Sink) {
        out.appendASCII(#","gwepoch":""#)
        out.appendJSONEscaped(gwepoch)
        out.appendASCII(#"","gwseq":"#)
        out.appendDecimal(gwseq)
    }

    /// Whether `fields` hold a personal field (`personalFields`), without hashing every name.
    static func hasPersonalField(_ fields: [(String, JSONValue)]) -> Bool {
        fields.contains { field in
            switch field.0 {
            case "person", "card", "pass", "plate", "visitor": true
            default: false
            }
        }
    }

    /// `envelope(...)`'s members and `data`'s, in the same order, as JSON text.
    static func write<Sink: JSONByteSink>(_ event: NormalisedEvent, source: EventSource, journalSeq: Int64, epoch: String,
                                          gwseq: Int64? = nil, into out: inout Sink) {
        out.appendASCII(#"{"specversion":"1.0","id":""#)
        // The id's parts are escaped one by one: escaping maps each byte on its own, so this is the escaped whole.
        out.appendJSONEscaped(source.site)
        out.append(UInt8(ascii: "/"))
        out.appendJSONEscaped(source.device)
        out.append(UInt8(ascii: "/"))
        switch event.origin {
        case let .device(boot, seq):
            if !event.serial.isEmpty {
                event.serial.withBytes { out.append(contentsOf: $0) }
                out.append(UInt8(ascii: "."))
            }
            out.appendDecimal(UInt64(boot))
            out.append(UInt8(ascii: "/"))
            out.appendDecimal(UInt64(seq))
        case .gateway:
            out.appendASCII("g/")
            out.appendJSONEscaped(source.gateway)
            out.append(UInt8(ascii: "/"))
            out.appendJSONEscaped(epoch)
            out.append(UInt8(ascii: "."))
            out.appendDecimal(journalSeq)
        }
        out.appendASCII(#"","source":"/accessgw/"#)
        out.appendJSONEscaped(source.site)
        out.append(UInt8(ascii: "/"))
        out.appendJSONEscaped(source.device)
        out.appendASCII(#"","type":"#)
        out.appendJSONString(event.type)
        out.appendASCII(#","time":""#)
        event.time.writeRFC3339(into: &out)
        out.appendASCII(#"","subject":"#)
        out.appendJSONString(source.device)
        out.appendASCII(#","recordedtime":""#)
        event.recordedTime.writeRFC3339(into: &out)
        out.appendASCII(#"","datacontenttype":"application/json","dataschema":""#)
        out.appendJSONEscaped(schemaBase)
        out.appendASCII("events/")
        out.appendJSONEscaped(event.type)
        out.appendASCII("/v")
        out.appendDecimal(Int64(schemaVersions.isEmpty ? 1 : schemaVersions[event.type] ?? 1))
        out.appendASCII(#".json""#)
        if hasPersonalField(event.fields) {
            out.appendASCII(#","dataclassification":"confidential","dataregulation":"pipl""#)
        }
        if let gwseq { writeReceiptAttributes(gwepoch: epoch, gwseq: gwseq, into: &out) }
        out.appendASCII(#","data":{"site":"#)
        out.appendJSONString(source.site)
        out.appendASCII(#","gateway":"#)
        out.appendJSONString(source.gateway)
        out.appendASCII(#","device":"#)
        out.appendJSONString(source.device)
        out.appendASCII(#","kind":"#)
        out.appendJSONString(source.kind)
        if !source.location.isEmpty {
            out.appendASCII(#","location":{"#)
            for (index, (key, value)) in source.location.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out.appendJSONString(key)
                out.append(UInt8(ascii: ":"))
                out.appendJSONString(value)
            }
            out.append(UInt8(ascii: "}"))
        }
        if case let .device(boot, seq) = event.origin {
            out.appendASCII(#","seq":"#)
            out.appendDecimal(UInt64(seq))
            out.appendASCII(#","boot":"#)
            out.appendDecimal(UInt64(boot))
        }
        out.appendASCII(event.alarm ? #","alarm":true"# : #","alarm":false"#)
        if source.readOnly { out.appendASCII(#","read_only":true"#) }
        for (name, value) in event.fields {
            out.append(UInt8(ascii: ","))
            out.appendJSONString(name)
            out.append(UInt8(ascii: ":"))
            value.write(into: &out)
        }
        if let raw = event.raw {
            out.appendASCII(#","raw":{"code":"#)
            out.appendDecimal(Int64(raw.code))
            out.appendASCII(#","point":"#)
            out.appendDecimal(Int64(raw.point))
            out.appendASCII(#","direction":"#)
            out.appendDecimal(Int64(raw.direction))
            out.appendASCII(#","value":"#)
            out.appendDecimal(Int64(raw.value))
            out.appendASCII(#","extra":"#)
            out.appendDecimal(Int64(raw.extra))
            out.appendASCII(#","flags":"#)
            out.appendDecimal(Int64(raw.flags))
            out.append(UInt8(ascii: "}"))
        }
        out.appendASCII("}}")
    }

    /// The CloudEvent as a tree (tests, schema checks); `json` writes the same text without building it.
    public static func envelope(_ event: NormalisedEvent, source: EventSource, journalSeq: Int64, epoch: String,
                                gwseq: Int64? = nil) -> JSONValue {
        var data: [(String, JSONValue)] = [
            ("site", .string(source.site)),
            ("gateway", .string(source.gateway)),
            ("device", .string(source.device)),
            ("kind", .string(source.kind)),
        ]
        if !source.location.isEmpty {
            data.append(("location", .object(source.location.map { ($0.0, .string($0.1)) })))
        }
        if case let .device(boot, seq) = event.origin {
            data.append(("seq", .int(Int64(seq))))
            data.append(("boot", .int(Int64(boot))))
        }
        data.append(("alarm", .bool(event.alarm)))
        if source.readOnly { data.append(("read_only", .bool(true))) }
        data += event.fields
        if let raw = event.raw {
            data.append(("raw", .object([
                ("code", .int(Int64(raw.code))), ("point", .int(Int64(raw.point))),
                ("direction", .int(Int64(raw.direction))), ("value", .int(Int64(raw.value))),
                ("extra", .int(Int64(raw.extra))), ("flags", .int(Int64(raw.flags))),
            ])))
        }
        var envelope: [(String, JSONValue)] = [
            ("specversion", .string("1.0")),
            ("id", .string(id(of: event, source: source, journalSeq: journalSeq, epoch: epoch))),
            ("source", .string("/accessgw/\(source.site)/\(source.device)")),
            ("type", .string(event.type)),
            ("time", .string(event.time.rfc3339)),
            ("subject", .string(source.device)),
            ("recordedtime", .string(event.recordedTime.rfc3339)),
            ("datacontenttype", .string("application/json")),
            ("dataschema", .string(dataschema(of: event.type))),
        ]
        if event.fields.contains(where: { personalFields.contains($0.0) }) {
            envelope.append(("dataclassification", .string("confidential")))
            envelope.append(("dataregulation", .string("pipl")))
        }
        if let gwseq {
            envelope.append(("gwepoch", .string(epoch)))
            envelope.append(("gwseq", .int(gwseq)))
        }
        envelope.append(("data", .object(data)))
        return .object(envelope)
    }
}
