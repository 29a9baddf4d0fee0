import AccessModel
import DeviceProfiles
import Foundation
import Testing

/// The SPEC 3.5 maps through the map-2 decoder and the rule engine: every rule fires with its event and fields.
@Suite("map-2 profiles and the rule engine")
struct MapProfileTests {
    static let observed = Timestamp(millisecondsSinceEpoch: 1_795_766_462_401)

    static func map(_ name: String) throws -> PolledMap {
        try #require(try Fixtures.profile(name).map)
    }

    static func events(_ map: PolledMap, _ before: MapWriting, _ after: MapWriting) -> [NormalisedEvent] {
        RuleEngine.events(map, previous: before.image, current: after.image, device: "dev", observedAt: observed)
    }

    @Test func liftMonitorDecodesAndEveryRuleFires() throws {
        let map = try Self.map("lift-monitor")
        #expect(map.reads.map(\.table) == [.discreteInputs, .input])
        let idle = MapWriting(map: map)
        var car = idle
        car.image[map.blocks[1].imageOffset + 0] = UInt16(bitPattern: -2)       // floor −2
        car.image[map.blocks[1].imageOffset + 1] = 0x0021                       // BCD fault 21
        car.image[map.blocks[1].imageOffset + 2] = 0x5678                       // trips, low word first
        car.image[map.blocks[1].imageOffset + 3] = 0x1234
        car.set("trapped", 1)
        car.set("overload", 1)
        let reading = MapReading(map: map, image: car.image)
        #expect(JSONValue.object(reading.state())["floor"] == .int(-2))
        #expect(reading.value(map.field(named: "fault_code")!) == .int(21))
        #expect(reading.value(map.field(named: "trips")!) == .int(0x1234_5678))
        let events = Self.events(map, idle, car)
        #expect(events.map(\.type) == ["elevator.fault", "elevator.fault", "elevator.overload"])
        #expect(events[0].alarm && events[0].field("fault") == .string("passenger_trapped") && events[0].field("floor") == .int(-2))
        #expect(events[1].field("fault_code") == .int(21) && events[1].field("floor") == .int(-2))
        #expect(events[2].alarm && events[2].field("floor") == .int(-2))

        var cleared = car
        cleared.image[map.blocks[1].imageOffset + 1] = 0
        let clearedEvents = Self.events(map, car, cleared)
        #expect(clearedEvents.map(\.type) == ["elevator.fault_cleared"])
        #expect(clearedEvents.first?.field("fault_code") == .int(21))

        var fire = idle
        fire.set("fire_service", 1)
        #expect(Self.events(map, idle, fire).map { $0.field("mode") } == [.string("fire_service")])
        #expect(Self.events(map, fire, idle).map { $0.field("mode") } == [.string("normal")])
        var inspection = idle
        inspection.set("inspection", 1)
        #expect(Self.events(map, idle, inspection).map { $0.field("mode") } == [.string("inspection")])
        var moving = idle
        moving.set("direction", 2)
        moving.set("door", 1)
        #expect(Self.events(map, idle, moving).isEmpty, "direction and door are state only")
        #expect(JSONValue.object(MapReading(map: map, image: moving.image).state())["direction"] == .string("down"))
    }

    @Test func turnstileCountsPassagesWrapsAndResets() throws {
        let map = try Self.map("turnstile")
        #expect(map.reads == [MapRead(table: .holding, address: 0, count: 6, parts: [.init(block: 0, start: 0)])])
        var before = MapWriting(map: map)
        before.set("entries", 100)
        before.set("exits", 0xFFFF_FFFE)
        var after = before
        after.set("entries", 105)
        after.set("exits", 3)                     // wrapped at 2³²: 5 more
        after.set("alarms", 0b111)
        let events = Self.events(map, before, after)
        #expect(events.map(\.type) == ["passage.counted", "passage.counted", "access.tailgating", "door.forced", "access.wrong_way"])
        #expect(events[0].field("direction") == .string("in") && events[0].field("count") == .int(5))
        #expect(events[1].field("direction") == .string("out") && events[1].field("count") == .int(5))
        #expect(events.dropFirst(2).allSatisfy { $0.alarm })

        var restarted = after
        restarted.set("entries", 2)
        restarted.set("exits", 3)
        let reset = Self.events(map, after, restarted)
        #expect(reset.map(\.type) == ["device.counter_reset"])
        #expect(reset.first?.field("counter") == .string("entries") && reset.first?.field("from") == .int(105)
                && reset.first?.field("to") == .int(2))
        #expect(Self.events(map, after, after).isEmpty)
    }

    @Test func cardReaderLatestEventBurstAndWrap() throws {
        let map = try Self.map("card-reader")
        var before = MapWriting(map: map)
        before.set("counter", 10)
        var after = before
        after.set("counter", 11)
        after.set("result", 0)
        after.set("card", Int64(bitPattern: 0xF123_4567_89AB_CDEF))
        after.set("door", 2)
        after.image[6] = 0x2611
        after.image[7] = 0x2716                  // 2026-11-27 16:01:02 at UTC+8
        after.image[8] = 0x0102
        let one = Self.events(map, before, after)
        #expect(one.map(\.type) == ["access.granted"])
        #expect(one[0].field("method") == .string("card") && one[0].field("card") == .string("17375808098319191535")
                && one[0].field("door") == .int(2))
        #expect(one[0].time.rfc3339 == "2026-11-27T08:01:02.000Z")

        for (result, reason) in [(1, "unknown_card"), (2, "card_expired"), (3, "outside_schedule")] {
            var denied = after
            denied.set("result", Int64(result))
            let event = try #require(Self.events(map, before, denied).first)
            #expect(event.type == "access.denied" && event.field("reason") == .string(reason))
        }

        var burst = before
        burst.set("counter", 17)                  // 7 swipes between two polls
        let lost = Self.events(map, before, burst)
        #expect(lost.map(\.type) == ["access.granted", "gateway.events_lost"])
        #expect(lost[1].field("lost") == .object([("count", .int(6)), ("from_seq", .int(11)), ("to_seq", .int(16))]))

        var top = before
        top.set("counter", 65535)
        var wrapped = before
        wrapped.set("counter", 1)                 // wrapped at 65536: 2 events
        #expect(Self.events(map, top, wrapped).map(\.type) == ["access.granted", "gateway.events_lost"])
        var reset = before
        reset.set("counter", 0)
        #expect(Self.events(map, burst, reset).map(\.type) == ["device.counter_reset"])
        #expect(RuleEngine.evaluate(map, previous: nil, current: after.image).isEmpty, "a first poll only sets the baseline")
    }

    /// Issue 19 item 3: a fault code caught mid-update (0 → 0x00A1 → 0x0021) is one change 0 → 21 with its alarm,
    /// not two changes through a value no rule matches; the non-BCD read is reported as invalid.
    @Test func aFaultCodeThroughANonBCDValueStillRaisesTheAlarm() throws {
        let map = try Self.map("lift-monitor")
        let code = map.blocks[1].imageOffset + 1
        let idle = MapWriting(map: map).image
        var garbled = idle
        garbled[code] = 0x00A1
        var fault = idle
        fault[code] = 0x0021
        let second = RuleEngine.settled(map, previous: idle, current: garbled)
        #expect(second.invalid == [map.field(named: "fault_code")!])
        #expect(second.image == idle, "the rules keep the last valid fault code")
        #expect(RuleEngine.evaluate(map, previous: idle, current: second.image).isEmpty)
        let third = RuleEngine.settled(map, previous: second.image, current: fault)
        #expect(third.invalid.isEmpty && third.image == fault)
        let events = RuleEngine.events(map, previous: second.image, current: third.image, device: "lift", observedAt: Self.observed)
        #expect(events.map(\.type) == ["elevator.fault"])
        #expect(events.first?.alarm == true && events.first?.field("fault_code") == .int(21))
        #expect(RuleEngine.settled(map, previous: nil, current: garbled).image == garbled, "a first poll has nothing to keep")
    }

    /// Issue 19 item 3: a counter that grew by more than `max_step` over several poll intervals (the gateway was down)
    /// is growth of up to `max_step` per interval, not a reset; a counter that went back is still a reset.
    @Test func counterGrowthIsAllowedPerElapsedInterval() throws {
        let map = try Self.map("turnstile")
        var before = MapWriting(map: map)
        before.set("entries", 100)
        var after = before
        after.set("entries", 100 + 25_000)
        #expect(RuleEngine.evaluate(map, previous: before.image, current: after.image).map(\.variant) == [.counterReset])
        let caughtUp = RuleEngine.evaluate(map, previous: before.image, current: after.image, intervals: 3)
        #expect(caughtUp == [RuleEngine.Emission(rule: 0, variant: .event, number: 25_000)])
        var reset = before
        reset.set("entries", 2)
        #expect(RuleEngine.evaluate(map, previous: before.image, current: reset.image, intervals: 1_000_000).map(\.variant)
                == [.counterReset], "going back is never growth, however long the gateway was down")
        #expect(RuleEngine.allowedGrowth(10_000, 1_000_000, 1 << 16) == 1 << 15)
        #expect(RuleEngine.allowedGrowth(10_000, 1, 1 << 16) == 10_000)
    }

    @Test func bcdTimeUsesTheDeviceOffset() throws {
        let map = try Self.map("card-reader")
        var image = MapWriting(map: map, utcOffsetSeconds: -5 * 3600 - 1800)
        let instant = Timestamp(millisecondsSinceEpoch: 1_795_766_462_000)
        image.set("time", time: instant)
        let reading = MapReading(map: map, image: image.image, utcOffsetSeconds: -5 * 3600 - 1800)
        #expect(reading.time(try #require(map.field(named: "time"))) == instant)
        #expect(MapReading(map: map, image: image.image).time(map.field(named: "time")!)?.millisecondsSinceEpoch
                == instant.millisecondsSinceEpoch - (8 * 3600 + 5 * 3600 + 1800) * 1000)
        var bad = image
        bad.image[6] = 0x26A1                     // a nibble above 9
        #expect(MapReading(map: map, image: bad.image).value(map.field(named: "time")!) == .null)
    }

    /// Issue 19 item 2: vendor manuals list BCD date-times in reading order, so a `bcd_time` reads its registers in
    /// pattern order whatever the profile's `word_order`; a field's own `word_order` still overrides it.
    @Test func bcdTimeReadsItsRegistersInPatternOrderWhateverTheProfileWordOrder() throws {
        let profile = try DeviceProfile.parse("""
            profile: low-first-clock
            kind: test
            registers: { word_order: low_first }
            blocks:
              r:
                table: input
                address: 0
                count: 8
                fields:
                  at:       { offset: 0, type: bcd_time, pattern: YYYYMMDDhhmmss__ }
                  reversed: { offset: 4, type: bcd_time, pattern: YYYYMMDDhhmmss__, word_order: low_first }
            """, file: "low-first-clock.yaml")
        let map = try #require(profile.map)
        let image: [UInt16] = [0x2026, 0x1207, 0x1011, 0x1200, 0x1200, 0x1011, 0x1207, 0x2026]
        let reading = MapReading(map: map, image: image)
        #expect(reading.time(try #require(map.field(named: "at")))?.rfc3339 == "2026-12-07T10:11:12.000Z")
        #expect(reading.time(try #require(map.field(named: "reversed")))?.rfc3339 == "2026-12-07T10:11:12.000Z")
        var written = MapWriting(map: map)
        written.set("at", time: try #require(reading.time(map.field(named: "at")!)))
        #expect(Array(written.image.prefix(4)) == Array(image.prefix(4)), "the simulator writes what the gateway reads")
    }

    @Test func readsMergeAdjacentBlocksButNeverAcrossAnIllegalGap() throws {
        let profile = try DeviceProfile.parse("""
            profile: merged
            kind: test
            reads: { max_register_gap: 4, illegal: { holding: [12-13] } }
            blocks:
              a: { table: holding, address: 0, count: 4, fields: { x: { offset: 0, type: u16 } } }
              b: { table: holding, address: 4, count: 2, fields: { y: { offset: 0, type: u16 } } }
              c: { table: holding, address: 8, count: 2, fields: { z: { offset: 0, type: u16 } } }
              d: { table: holding, address: 14, count: 2, fields: { w: { offset: 0, type: u16 } } }
              e: { table: coils, address: 0, count: 3, fields: { k: { offset: 2, type: bit } } }
              f: { table: coils, address: 3, count: 20, fields: { l: { offset: 19, type: bit } } }
            """, file: "merged.yaml")
        let reads = try #require(profile.map).reads
        #expect(reads.map { "\($0.table.rawValue) \($0.address)+\($0.count)" } == ["coils 0+23", "holding 0+10", "holding 14+2"])
        var image = MapWriting(map: profile.map!)
        image.set("l", 1)
        image.set("k", 1)
        #expect(MapReading(map: profile.map!, image: image.image).value(profile.map!.field(named: "l")!) == .bool(true))
        #expect(profile.map!.imageWords == 4 + 2 + 2 + 2 + 1 + 2)
    }

    @Test func everyTypeByteAndWordOrderScaleAndOffset() throws {
        let profile = try DeviceProfile.parse("""
            profile: types
            kind: test
            registers: { byte_order: little }
            enums: { state: { 1: on } }
            blocks:
              r:
                table: input
                address: 0
                count: 20
                fields:
                  a: { offset: 0, type: i16, byte_order: big, scale: 0.5, add: -40 }
                  b: { offset: 1, type: i32, byte_order: big, word_order: low_first }
                  c: { offset: 3, type: float32, byte_order: big }
                  d: { offset: 5, type: i64, byte_order: big }
                  e: { offset: 9, type: bcd32, byte_order: big }
                  f: { offset: 11, type: string, length: 4, byte_order: big }
                  g: { offset: 13, type: u16, enum: state }
                  h: { offset: 14, type: u16 }
            """, file: "types.yaml")
        let map = try #require(profile.map)
        var w = MapWriting(map: map)
        w.set("a", 200)
        w.set("b", -70000)
        w.set("c", float: 1.5)
        w.set("d", -5_000_000_000)
        w.set("e", 12_345_678)
        w.set("f", text: "AB1")
        w.set("g", 1)
        w.image[14] = 0x3412                      // little endian register: 0x1234
        let r = MapReading(map: map, image: w.image)
        let values = map.fields.indices.map { r.value($0) }
        #expect(values == [.double(60), .int(-70000), .double(1.5), .int(-5_000_000_000), .int(12_345_678),
                           .string("AB1"), .string("on"), .int(0x1234)])
    }

    /// The fourth profile, written only from Devices/README.md for a WB-MR6LV relay module driving a barrier.
    @Test func barrierGateOnARelayModule() throws {
        let map = try Self.map("barrier-gate")
        #expect(map.reads.map { "\($0.table.rawValue) \($0.address)+\($0.count)" }
                == ["coils 0+6", "discrete_inputs 0+6", "input 32+6", "input 104+2", "input 121+1"])
        var down = MapWriting(map: map)
        down.set("arm_down", 1)
        down.set("vehicles", 65534)
        down.image[map.blocks[4].imageOffset] = 12034
        var up = down
        up.set("arm_down", 0)
        up.set("arm_up", 1)
        up.set("beam_broken", 1)
        up.set("vehicles", 2)                    // wrapped at 65536: 4 vehicles
        let events = Self.events(map, down, up)
        #expect(events.map(\.type) == ["barrier.opened", "barrier.obstructed", "vehicle.counted"])
        #expect(events[2].field("count") == .int(4) && events[2].field("lane") == .int(1))
        #expect(JSONValue.object(MapReading(map: map, image: up.image).state())["supply_volts"] == .double(12.034))
        var closing = up
        closing.set("arm_down", 1)
        closing.set("beam_broken", 0)
        var blocked = closing
        blocked.set("beam_broken", 1)            // beam broken while the arm is down: guarded out
        #expect(Self.events(map, closing, blocked).isEmpty)
    }

    /// SPEC 3.5: the relay module's `open` and `close` pulse K1 and K2 (coils 0 and 1, function 05) for 1 s.
    @Test func barrierGateCommandsPulseTheRelays() throws {
        let map = try Self.map("barrier-gate")
        #expect(map.commands == [
            MapCommand(name: "open", table: .coils, address: 0, function: 5, value: 1, pulseMilliseconds: 1000, rest: 0,
                       line: try #require(map.command(named: "open")).line),
            MapCommand(name: "close", table: .coils, address: 1, function: 5, value: 1, pulseMilliseconds: 1000, rest: 0,
                       line: try #require(map.command(named: "close")).line),
        ])
        #expect(try Fixtures.profile("barrier-gate").commands == nil, "a map-2 profile has no command block")
    }
}
