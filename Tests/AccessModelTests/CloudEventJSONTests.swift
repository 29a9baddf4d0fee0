@testable import AccessModel
#if canImport(Glibc)
import Glibc
#endif
import Simulators
import Testing

/// `CloudEvent.json` writes the payload straight into a buffer; `CloudEvent.envelope(...).serialized` builds the
/// same payload as a tree. These pin both to golden bytes and to each other.
@Suite("CloudEvent JSON: written directly, byte for byte the tree's")
struct CloudEventJSONTests {
    static let doorSource = EventSource(site: "kunming-guandu", gateway: "gw-01", device: "door-3e", kind: "face-door",
                                        location: [("building", "3"), ("entrance", "east")])

    @Test func aDeviceRecordMatchesItsGoldenPayload() {
        var event = NormalisedEvent(
            device: "door-3e", origin: .device(boot: 7, seq: 1042), type: "access.granted", alarm: false,
            time: Timestamp(millisecondsSinceEpoch: 1_795_766_462_345), recordedTime: Timestamp(millisecondsSinceEpoch: 1_795_766_462_401),
            fields: [("method", .string("face")), ("person", .string("P-0012")), ("score", .double(0.934)), ("door", .int(1)),
                     ("direction", .string("in"))],
            raw: .init(code: 1, point: 1, direction: 1, value: 934, extra: 0, flags: 0))
        event.serial = DeviceSerial(sanitising: "FD2411A00193")
        let golden = #"{"specversion":"1.0","id":"kunming-guandu/door-3e/FD2411A00193.7/1042","source":"/accessgw/kunming-guandu/door-3e","type":"access.granted","time":"2026-11-27T08:01:02.345Z","subject":"door-3e","recordedtime":"2026-11-27T08:01:02.401Z","datacontenttype":"application/json","dataschema":"https://accessgw.example/schemas/events/access.granted/v1.json","dataclassification":"confidential","dataregulation":"pipl","data":{"site":"kunming-guandu","gateway":"gw-01","device":"door-3e","kind":"face-door","location":{"building":"3","entrance":"east"},"seq":1042,"boot":7,"alarm":false,"method":"face","person":"P-0012","score":0.934,"door":1,"direction":"in","raw":{"code":1,"point":1,"direction":1,"value":934,"extra":0,"flags":0}}}"#
        #expect(CloudEvent.json(event, source: Self.doorSource, journalSeq: 99, epoch: "5eed") == golden)
        #expect(CloudEvent.envelope(event, source: Self.doorSource, journalSeq: 99, epoch: "5eed").serialized == golden)
    }

    @Test func aGatewayEventWithEscapesNegativesAndOddNumbersMatchesItsGoldenPayload() {
        let source = EventSource(site: "s\"1", gateway: "g\\w", device: "d\n云", kind: "k\u{1}", location: [("b\t", "x\r")],
                                 readOnly: true)
        let event = NormalisedEvent(
            device: "d\n云", origin: .gateway, type: "gateway.events_lost", alarm: true,
            time: Timestamp(millisecondsSinceEpoch: -1), recordedTime: Timestamp(millisecondsSinceEpoch: 0),
            fields: [("lost", .object([("count", .int(Int64.min)), ("to", .int(-42))])), ("f", .double(-0.0)),
                     ("g", .double(3)), ("h", .double(.nan)), ("i", .double(1e20)), ("j", .double(-2.5)),
                     ("k", .array([.bool(true), .null, .string("\u{1f}")])), ("plate", .string("云A12345"))])
        let golden = #"{"specversion":"1.0","id":"s\"1/d\n云/g/g\\w/e\"p.-7","source":"/accessgw/s\"1/d\n云","type":"gateway.events_lost","time":"1969-12-31T23:59:59.999Z","subject":"d\n云","recordedtime":"1970-01-01T00:00:00.000Z","datacontenttype":"application/json","dataschema":"https://accessgw.example/schemas/events/gateway.events_lost/v1.json","dataclassification":"confidential","dataregulation":"pipl","data":{"site":"s\"1","gateway":"g\\w","device":"d\n云","kind":"k\u0001","location":{"b\t":"x\r"},"alarm":true,"read_only":true,"lost":{"count":-9223372036854775808,"to":-42},"f":0,"g":3,"h":null,"i":1e+20,"j":-2.5,"k":[true,null,"\u001f"],"plate":"云A12345"}}"#
        #expect(CloudEvent.json(event, source: source, journalSeq: -7, epoch: "e\"p") == golden)
        #expect(CloudEvent.envelope(event, source: source, journalSeq: -7, epoch: "e\"p").serialized == golden)
    }

    @Test func aDeviceWithoutSerialAndExtremeNumbers() {
        let source = EventSource(site: "s", gateway: "g", device: "d", kind: "elevator")
        let event = NormalisedEvent(
            device: "d", origin: .device(boot: 65535, seq: 4_294_967_295), type: "elevator.call", alarm: false,
            time: Timestamp(millisecondsSinceEpoch: 253_402_300_799_999), recordedTime: Timestamp(millisecondsSinceEpoch: 951_782_400_000),
            raw: .init(code: 65535, point: -32768, direction: 255, value: 4_294_967_295, extra: 0, flags: 255))
        let golden = #"{"specversion":"1.0","id":"s/d/65535/4294967295","source":"/accessgw/s/d","type":"elevator.call","time":"9999-12-31T23:59:59.999Z","subject":"d","recordedtime":"2000-02-29T00:00:00.000Z","datacontenttype":"application/json","dataschema":"https://accessgw.example/schemas/events/elevator.call/v1.json","data":{"site":"s","gateway":"g","device":"d","kind":"elevator","seq":4294967295,"boot":65535,"alarm":false,"raw":{"code":65535,"point":-32768,"direction":255,"value":4294967295,"extra":0,"flags":255}}}"#
        #expect(CloudEvent.json(event, source: source, journalSeq: 0, epoch: "") == golden)
        #expect(CloudEvent.envelope(event, source: source, journalSeq: 0, epoch: "").serialized == golden)
    }

    @Test func aPayloadLargerThanTheStackBufferIsWhole() {
        let long = String(repeating: "楼", count: 700)
        let source = EventSource(site: "s", gateway: "g", device: "d", kind: "k", location: [("note", long), ("q", "\"\\")])
        let event = NormalisedEvent(device: "d", origin: .gateway, type: "device.online", alarm: false,
                                    time: Timestamp(millisecondsSinceEpoch: 1), recordedTime: Timestamp(millisecondsSinceEpoch: 2))
        let json = CloudEvent.json(event, source: source, journalSeq: 3, epoch: "ab")
        #expect(json.utf8.count > 2100)
        #expect(json == CloudEvent.envelope(event, source: source, journalSeq: 3, epoch: "ab").serialized)
        #expect(json.hasSuffix(#""location":{"note":"\#(long)","q":"\"\\"},"alarm":false}}"#))
    }

    @Test func randomEventsMatchTheTree() {
        var random = SeededRandom(seed: 0x5eed)
        for round in 0..<3000 {
            let (event, source, journalSeq, epoch) = random.event()
            let direct = CloudEvent.json(event, source: source, journalSeq: journalSeq, epoch: epoch)
            let tree = CloudEvent.envelope(event, source: source, journalSeq: journalSeq, epoch: epoch).serialized
            #expect(direct == tree, "round \(round)")
            if direct != tree { break }
        }
    }

    @Test func thePersonalFieldCheckIsThePersonalFieldSet() {
        for name in CloudEvent.personalFields { #expect(CloudEvent.hasPersonalField([("x", .int(1)), (name, .null)]), "\(name)") }
        for name in ["subject", "subject_hex", "persons", "Person", "", "door", "plate_colour", "car", "pas"] {
            #expect(!CloudEvent.hasPersonalField([(name, .string("p"))]), "\(name)")
        }
    }

    @Test func integersAreWrittenAsStringSpellsThem() {
        var random = SeededRandom(seed: 7)
        var values: [Int64] = [0, 1, -1, 9, 10, -10, 99, 100, Int64.max, Int64.min, Int64.max - 1, Int64.min + 1]
        for _ in 0..<2000 { values.append(Int64(bitPattern: random.next() >> (random.next() % 64))) }
        for value in values {
            #expect(JSONValue.int(value).serialized == String(value))
            #expect(JSONValue.double(Double(value)).serialized == oldDoubleText(Double(value)))
        }
    }

    /// How the tree spelt a double before the direct writer.
    func oldDoubleText(_ d: Double) -> String {
        d.isFinite ? (d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)) : "null"
    }

    @Test func timestampsAreTheCLibrarysCalendar() {
        var random = SeededRandom(seed: 11)
        var millis: [Int64] = [0, -1, 1, 951_782_400_000, 951_868_799_999, 253_402_300_799_999, 253_402_300_800_000,
                               -62_167_219_200_000, -62_167_219_200_001, 4_102_444_800_000, 1_795_766_462_345]
        for _ in 0..<20000 { millis.append(Int64(random.next() % 400_000_000_000_000) - 100_000_000_000_000) }
        for ms in millis {
            let expected = gmtimeRFC3339(ms)
            #expect(Timestamp(millisecondsSinceEpoch: ms).rfc3339 == expected, "\(ms)")
            var bytes: [UInt8] = []
            Timestamp(millisecondsSinceEpoch: ms).writeRFC3339(into: &bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == expected, "\(ms)")
        }
    }

    /// The `gmtime_r` formatting `rfc3339` used before computing the calendar itself.
    func gmtimeRFC3339(_ ms: Int64) -> String {
        let seconds = ms.floorDiv(1000)
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ value: Int, _ width: Int) -> String {
            let s = String(value)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))"
            + "T\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(Int(ms - seconds * 1000), 3))Z"
    }
}

/// Seeded events with every shape `CloudEvent` writes.
extension SeededRandom {
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    mutating func text() -> String {
        let pieces = ["a", "door-3e", "\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1f}", "\u{7f}", "云", "A12345", "é", "😀", "/", " "]
        return (0..<below(6)).map { _ in pieces[below(pieces.count)] }.joined()
    }

    mutating func value(depth: Int) -> JSONValue {
        switch below(depth > 1 ? 6 : 8) {
        case 0: return .string(text())
        case 1: return .int(Int64(bitPattern: next() >> (next() % 64)))
        case 2: return .double([0.934, -0.0, 3, .nan, .infinity, 1e15, 1e20, -2.5, 1.0 / 3][below(9)])
        case 3: return .bool(below(2) == 0)
        case 4: return .null
        case 5: return .int(Int64(below(100)) - 50)
        case 6: return .array((0..<below(4)).map { _ in value(depth: depth + 1) })
        default: return .object((0..<below(4)).map { _ in (text(), value(depth: depth + 1)) })
        }
    }

    mutating func event() -> (NormalisedEvent, EventSource, Int64, String) {
        let names = ["person", "card", "pass", "plate", "visitor", "subject", "door", "method", "score", "subject_hex"]
        let source = EventSource(site: text(), gateway: text(), device: text(), kind: text(),
                                 location: (0..<below(3)).map { _ in (text(), text()) }, readOnly: below(4) == 0)
        let origin: NormalisedEvent.Origin = below(3) == 0 ? .gateway : .device(boot: UInt16(truncatingIfNeeded: next()),
                                                                               seq: UInt32(truncatingIfNeeded: next()))
        var event = NormalisedEvent(
            device: source.device, origin: origin, type: below(5) == 0 ? text() : "access.granted", alarm: below(2) == 0,
            time: Timestamp(millisecondsSinceEpoch: Int64(next() % 300_000_000_000_000) - 100_000_000_000_000),
            recordedTime: Timestamp(millisecondsSinceEpoch: Int64(next() % 4_000_000_000_000)),
            fields: (0..<below(7)).map { _ in (below(2) == 0 ? names[below(names.count)] : text(), value(depth: 0)) },
            raw: below(3) == 0 ? nil : .init(code: UInt16(truncatingIfNeeded: next()), point: Int16(truncatingIfNeeded: next()),
                                               direction: UInt8(truncatingIfNeeded: next()), value: UInt32(truncatingIfNeeded: next()),
                                               extra: UInt32(truncatingIfNeeded: next()), flags: UInt8(truncatingIfNeeded: next())))
        if below(2) == 0 { event.serial = DeviceSerial(sanitising: text() + "FD24" + text()) }
        return (event, source, Int64(bitPattern: next()) >> (next() % 64), text())
    }
}
