import AccessModel
import DeviceProfiles
import Foundation
import Testing

/// Random register contents into every rule type and every field type: decoding never traps and every event
/// serialises to JSON that parses. Seeded, so a failure repeats.
@Suite("map-2 decoding fuzz")
struct MapFuzzTests {
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Every field type with a rule of every kind on it.
    static let everything = """
        profile: everything
        kind: fuzz
        utc_offset: "-09:30"
        enums: { words: { 0: zero, 1: one } }
        blocks:
          bits:
            table: coils
            address: 0
            count: 20
            fields:
              b0: { offset: 0, type: bit }
              b1: { offset: 1, type: bits, count: 19, enum: words }
          regs:
            table: holding
            address: 0
            count: 28
            fields:
              u16: { offset: 0, type: u16, bits: { 0: a, 15: b } }
              i16: { offset: 1, type: i16, scale: 0.1, add: -40 }
              u32: { offset: 2, type: u32, word_order: low_first }
              i32: { offset: 4, type: i32, byte_order: little }
              u64: { offset: 6, type: u64, format: decimal }
              i64: { offset: 10, type: i64 }
              f32: { offset: 14, type: float32, scale: 2 }
              bcd16: { offset: 16, type: bcd16 }
              bcd32: { offset: 17, type: bcd32 }
              text: { offset: 19, type: string, length: 6, encoding: gb18030 }
              when: { offset: 22, type: bcd_time, pattern: YYYYMMDDhhmmss__ }
              unix: { offset: 26, type: u32, format: unix_time }
        rules:
          - { on: { change: b0 }, type: test.bit, fields: { v: b1, f: from } }
          - { on: { change: u16, bit: 15, from: 0, to: 1 }, where: { b0: 1 }, type: test.flag, fields: { t: text, w: when } }
          - { on: { change: bcd16, from: 0, to: nonzero }, type: test.bcd, fields: { f: f32, x: i16 } }
          - { on: { counter: u32 }, type: test.count, fields: { n: count, u: u64 } }
          - { on: { counter: u64, max_step: 1000000 }, type: test.countwide }
          - { on: { counter: bcd32 }, type: test.countdecimal, fields: { i: i64 } }
          - { on: { counter: b1 }, type: test.countbits }
          - on: { latest: u16, code: i16, time: when }
            fields: { u: unix, t: text, i: i32 }
            codes: { 0: { type: test.zero }, 1: { type: test.one, alarm: true } }
          - { on: { latest: i32, time: unix }, type: test.latest }
        """

    @Test func randomImagesNeverCrashAndAlwaysMakeValidJSON() throws {
        var maps = try ["lift-monitor", "turnstile", "card-reader", "barrier-gate"].map { try #require(try Fixtures.profile($0).map) }
        maps.append(try #require(try DeviceProfile.parse(Self.everything, file: "everything.yaml").map))
        var random = SplitMix(state: 0xACCE_55)
        let source = EventSource(site: "s", gateway: "g", device: "d", kind: "k")
        var emitted = 0
        for map in maps {
            for round in 0..<400 {
                func image() -> [UInt16] {
                    (0..<map.imageWords).map { _ in
                        // Mostly small values so counters and changes fire; sometimes anything.
                        round % 3 == 0 ? UInt16.random(in: 0...UInt16.max, using: &random) : UInt16.random(in: 0...3, using: &random)
                    }
                }
                let before = image(), after = image()
                var emissions = RuleEngine.evaluate(map, previous: before, current: after)
                // Every rule in every variant, whether or not this pair of images triggers it.
                for rule in map.rules.indices {
                    for variant in [RuleEngine.Emission.Variant.event, .counterReset, .eventsLost] {
                        emissions.append(.init(rule: rule, variant: variant, number: Int64(bitPattern: random.next())))
                    }
                }
                for emission in emissions {
                    let record = emission.record(device: 0, image: after, last: true, observedAtMillis: 1)
                    let roundTrip = RuleEngine.Emission(record: record)
                    #expect(roundTrip == emission)
                    let event = RuleEngine.event(roundTrip, map: map, image: record.image(count: map.imageWords), device: "d",
                                                 observedAt: Timestamp(millisecondsSinceEpoch: 1))
                    let json = CloudEvent.json(event, source: source, journalSeq: 1, epoch: "5eed")
                    #expect((try? JSONSerialization.jsonObject(with: Data(json.utf8))) != nil, "invalid JSON: \(json)")
                    emitted += 1
                }
                let state = JSONValue.object(MapReading(map: map, image: after).state()).serialized
                #expect((try? JSONSerialization.jsonObject(with: Data(state.utf8))) != nil, "invalid JSON: \(state)")
            }
        }
        #expect(emitted > 10_000)
    }
}
