import AccessModel
import DeviceProfiles
import Testing

/// A different vendor's device expressed only as a profile: little-endian registers, low word first,
/// other addresses and codes, an ASCII subject, a scale factor, and a state-only device.
@Suite("vendor profiles")
struct VendorProfileTests {
    static let littleEndianVendor = """
    profile: acme-door
    kind: face-door
    registers: { byte_order: little, word_order: low_first }
    enums:
      side: { 5: in, 6: out }
    state:
      address: 400
      count: 2
      fields:
        temperature: { offset: 0, type: i16, scale: 0.1 }
        open:        { offset: 1, type: bool }
    event_log:
      address: 1000
      header: { head_seq: 0, tail_seq: 2, boot_id: 4, window_count: 5, ack_seq: 6, unread: 8, log_flags: 9 }
      window: { offset: 12, records: 2, record_size: 16 }
      record:
        seq:       { offset: 0, type: u32 }
        time:      { offset: 2, type: u32 }
        code:      { offset: 4, type: u16 }
        direction: { offset: 5, type: u16 }
        value:     { offset: 6, type: u32 }
        subject:   { offset: 8, type: string, length: 16, encoding: ascii }
    events:
      700: { type: access.granted, set: { method: face }, fields: { person: subject, score: value / 100, direction: direction as side } }
    """

    @Test func littleEndianLowWordFirstRecordDecodes() throws {
        let profile = try DeviceProfile.parse(Self.littleEndianVendor, file: "acme-door.yaml")
        func le32(_ v: UInt32) -> [UInt16] { [UInt16(v & 0xFFFF).byteSwapped, UInt16(v >> 16).byteSwapped] }
        var words = le32(55) + le32(1_795_766_462) + [UInt16(700).byteSwapped, UInt16(6).byteSwapped] + le32(97)
        let subject = Array("A-9".utf8) + [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        for i in 0..<8 { words.append((UInt16(subject[2 * i]) << 8 | UInt16(subject[2 * i + 1])).byteSwapped) }
        let decoder = try #require(RecordDecoder(profile: profile))
        let event = words.withUnsafeBufferPointer {
            decoder.event(of: $0, device: "acme-1", boot: 1, observedAt: .now).event
        }
        #expect(event.origin == .device(boot: 1, seq: 55))
        #expect(event.type == "access.granted")
        #expect(event.field("person") == .string("A-9"))
        #expect(event.field("score") == .double(0.97))
        #expect(event.field("direction") == .string("out"))
        #expect(event.time == Timestamp(seconds: 1_795_766_462, millis: 0))
    }

    @Test func stateOnlyDeviceNeedsNoEventLog() throws {
        let profile = try DeviceProfile.parse("""
        profile: meter
        kind: door-sensor
        state:
          address: 0
          count: 2
          fields:
            temperature: { offset: 0, type: i16, scale: 0.1 }
            open:        { offset: 1, type: bool }
        """, file: "meter.yaml")
        #expect(profile.eventLog == nil)
        #expect(RecordDecoder(profile: profile) == nil)
        let words: [UInt16] = [UInt16(bitPattern: -45), 1]
        let state = words.withUnsafeBufferPointer { RegisterReading(words: $0, layout: profile.layout).presented(profile.state!) }
        #expect(state.map(\.0) == ["temperature", "open"])
        #expect(state[0].1 == .double(-4.5))
        #expect(state[1].1 == .bool(true))
    }

    @Test func eventLogHeaderDecodesAndAckWordsFollowTheWordOrder() throws {
        let profile = try Fixtures.profile("face-door")
        let log = try #require(profile.eventLog)
        let words: [UInt16] = [0, 1042, 0, 43, 7, 3, 0, 1039, 3, 0b101]
        let header = words.withUnsafeBufferPointer { log.header(from: $0, layout: profile.layout) }
        #expect(header == EventLogHeader(headSeq: 1042, tailSeq: 43, bootID: 7, windowCount: 3, ackSeq: 1039, unread: 3, logFlags: 5))
        #expect(header.overwroteSinceAck && header.clockUnsynchronised && !header.nearlyFull)
        #expect(log.ackWords(70_001, layout: profile.layout) == [1, 4465])
        #expect(log.ackWords(70_001, layout: WordLayout(byteOrder: .big, wordOrder: .lowFirst)) == [4465, 1])
    }

    @Test func identityBlockIsPresentedInWords() throws {
        let profile = try Fixtures.profile("plate-reader")
        var words = [UInt16](repeating: 0, count: 16)
        words[0] = 2; words[1] = 1
        let serial = Array("PR-0001".utf8)
        for i in 0..<serial.count { words[2 + i / 2] |= UInt16(serial[i]) << (i % 2 == 0 ? 8 : 0) }
        words[10] = 2; words[11] = 14
        words[12] = UInt16(1_795_766_462 >> 16); words[13] = UInt16(1_795_766_462 & 0xFFFF)
        words[14] = 0b1001
        let identity = words.withUnsafeBufferPointer { RegisterReading(words: $0, layout: profile.layout).presented(profile.identity!) }
        #expect(JSONValue.object(identity) == .object([
            ("kind", .int(2)), ("map_version", .int(1)), ("serial", .string("PR-0001")), ("firmware", .string("2.14")),
            ("clock", .string("2026-11-27T08:01:02.000Z")), ("health", .array([.string("tamper"), .string("clock_not_set")])),
        ]))
    }
}
