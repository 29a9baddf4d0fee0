import AccessModel

/// The event rules of a map-2 profile, interpreted: previous image and present image in, emissions out. Pure;
/// nothing in it depends on the kind of device, only on the rules as data.
public enum RuleEngine {
    /// One event a poll produced, before it becomes a `NormalisedEvent`: small enough to ride the ring with the
    /// image it was made from (see `record(...)`).
    public struct Emission: Sendable, Equatable {
        public enum Variant: UInt8, Sendable {
            /// The rule's own event.
            case event = 0
            /// A counter went backwards: `device.counter_reset`, `number` is the value before.
            case counterReset = 1
            /// A latest-event counter grew by more than one: `gateway.events_lost`, `number` is how many.
            case eventsLost = 2
        }

        public var rule: Int
        public var variant: Variant
        /// The counter's growth for counter and latest events and for losses; the previous value for changes
        /// and resets.
        public var number: Int64

        public init(rule: Int, variant: Variant, number: Int64) {
            self.rule = rule
            self.variant = variant
            self.number = number
        }
    }

    /// What the rules emit going from `previous` to `current`; a first poll (no previous image) emits nothing
    /// and only sets the baseline, so a gateway never invents events from values it has not seen change.
    /// `intervals`: how many poll intervals passed between the two images (more than 1 after an outage or a
    /// restart): a counter may then have grown by `max_step` per interval (`allowedGrowth`).
    public static func evaluate(_ map: PolledMap, previous: [UInt16]?, current: [UInt16], intervals: UInt64 = 1) -> [Emission] {
        guard let previous else { return [] }
        let before = MapReading(map: map, image: previous), now = MapReading(map: map, image: current)
        var out: [Emission] = []
        for (index, rule) in map.rules.enumerated() {
            guard rule.guards.allSatisfy({ now.raw($0.field).map($0.match.matches) ?? false }) else { continue }
            switch rule.trigger {
            case let .change(field, bit, from, to):
                guard let old = before.raw(field, bit: bit), let new = now.raw(field, bit: bit), old != new,
                      from.matches(old), to.matches(new) else { continue }
                out.append(Emission(rule: index, variant: .event, number: old))
            case let .counter(field, maxStep):
                guard let old = before.raw(field), let new = now.raw(field), old != new else { continue }
                let modulus = map.fields[field].modulus
                if let growth = growth(from: old, to: new, modulus: modulus, maxStep: allowedGrowth(maxStep, intervals, modulus)) {
                    out.append(Emission(rule: index, variant: .event, number: growth))
                } else {
                    out.append(Emission(rule: index, variant: .counterReset, number: old))
                }
            case let .latest(counter, _, _, maxStep):
                guard let old = before.raw(counter), let new = now.raw(counter), old != new else { continue }
                let modulus = map.fields[counter].modulus
                if let growth = growth(from: old, to: new, modulus: modulus, maxStep: allowedGrowth(maxStep, intervals, modulus)) {
                    out.append(Emission(rule: index, variant: .event, number: 1))
                    if growth > 1 { out.append(Emission(rule: index, variant: .eventsLost, number: growth - 1)) }
                } else {
                    out.append(Emission(rule: index, variant: .counterReset, number: old))
                }
            }
        }
        return out
    }

    /// The values the rules look at in `image` (watched fields and bits, guards, codes): when none of them
    /// changed, a poll leaves the baseline as it was.
    public static func followedValues(_ map: PolledMap, image: [UInt16]) -> [Int64?] {
        let reading = MapReading(map: map, image: image)
        var values: [Int64?] = []
        for rule in map.rules {
            switch rule.trigger {
            case let .change(field, bit, _, _): values.append(reading.raw(field, bit: bit))
            case let .counter(field, _): values.append(reading.raw(field))
            case let .latest(counter, _, _, _): values.append(reading.raw(counter))
            }
            for condition in rule.guards { values.append(reading.raw(condition.field)) }
        }
        return values
    }

    /// The growth a counter may show after `intervals` poll intervals: `max_step` per interval, but below half the
    /// counter's range, so that a counter that went back (a reset) is never taken for one that went round.
    public static func allowedGrowth(_ maxStep: UInt64, _ intervals: UInt64, _ modulus: UInt64?) -> UInt64 {
        guard intervals > 1 else { return maxStep }
        let (scaled, overflow) = maxStep.multipliedReportingOverflow(by: intervals)
        return max(maxStep, min(overflow ? UInt64.max : scaled, (modulus ?? UInt64.max) / 2))
    }

    /// `current` with every whole-number field that reads as no value (a BCD nibble above 9: a register caught
    /// mid-update, or garbage) put back to what `previous` held, so the rules compare with the last valid value:
    /// 0 → 0x00A1 → 0x0021 is one change 0 → 21, not two changes through a value no rule matches. The fields
    /// set back are returned too (for the count of bad values). Their registers are set back whole.
    public static func settled(_ map: PolledMap, previous: [UInt16]?, current: [UInt16]) -> (image: [UInt16], invalid: [Int]) {
        guard let previous, previous.count == current.count else { return (current, []) }
        let now = MapReading(map: map, image: current), before = MapReading(map: map, image: previous)
        var image = current
        var invalid: [Int] = []
        for (index, field) in map.fields.enumerated() where field.isInteger && !map.blocks[field.block].table.holdsBits {
            guard now.raw(index) == nil else { continue }
            invalid.append(index)
            guard before.raw(index) != nil else { continue }
            let base = map.blocks[field.block].imageOffset + field.offset
            for i in base..<min(base + field.span, image.count) { image[i] = previous[i] }
        }
        return (image, invalid)
    }

    /// How far a counter moved forward from `old` to `new`, wrapping at `modulus` (nil: 2⁶⁴); nil when that is
    /// more than `maxStep`, which means it went backwards (the device restarted or was reset).
    public static func growth(from old: Int64, to new: Int64, modulus: UInt64?, maxStep: UInt64) -> Int64? {
        let a = UInt64(bitPattern: old), b = UInt64(bitPattern: new)
        let step: UInt64
        if let modulus {
            let (x, y) = (a % modulus, b % modulus)
            step = y >= x ? y - x : modulus - x + y
        } else {
            step = b &- a
        }
        guard step > 0, step <= maxStep, step <= UInt64(Int64.max) else { return nil }
        return Int64(step)
    }

    /// The normalised event of one emission, its fields read from the image the poll saw.
    public static func event(_ emission: Emission, map: PolledMap, image: [UInt16], device: String, observedAt: Timestamp,
                             utcOffsetSeconds: Int? = nil) -> NormalisedEvent {
        let reading = MapReading(map: map, image: image, utcOffsetSeconds: utcOffsetSeconds)
        var event = NormalisedEvent(device: device, origin: .gateway, type: "device.unknown_event", alarm: false,
                                    time: observedAt, recordedTime: observedAt)
        guard map.rules.indices.contains(emission.rule) else {
            event.fields = [("rule", .int(Int64(emission.rule)))]
            return event
        }
        let rule = map.rules[emission.rule]
        let watched = map.fields[rule.trigger.watched]
        switch emission.variant {
        case .counterReset:
            event.type = "device.counter_reset"
            event.fields = [("counter", .string(watched.name)), ("from", .int(emission.number)),
                            ("to", reading.raw(rule.trigger.watched).map(JSONValue.int) ?? .null)]
            return event
        case .eventsLost:
            let counter = reading.raw(rule.trigger.watched) ?? 0
            let modulus = watched.modulus.map { Int64(clamping: $0) }
            func wrapped(_ n: Int64) -> Int64 { modulus.map { (n % $0 + $0) % $0 } ?? n }
            event.type = "gateway.events_lost"
            event.fields = [("lost", .object([("count", .int(emission.number)),
                                              ("from_seq", .int(wrapped(counter &- emission.number))),
                                              ("to_seq", .int(wrapped(counter &- 1)))]))]
            return event
        case .event:
            break
        }
        var outcome = rule.outcome
        if case let .latest(_, code, time, _) = rule.trigger {
            if let time, let at = reading.time(time) { event.time = at }
            if let code {
                let number = reading.raw(code)
                outcome = number.flatMap { rule.codes[$0] }
                if outcome == nil {
                    event.fields = [("code", number.map(JSONValue.int) ?? .null)]
                        + (rule.outcome?.fields ?? []).map { ($0.0, source($0.1, emission, reading, watched)) }
                    return event
                }
            }
        }
        guard let outcome else { return event }
        event.type = outcome.type
        event.alarm = outcome.alarm
        event.fields = outcome.constants + outcome.fields.map { ($0.0, source($0.1, emission, reading, watched)) }
        if case .counter = rule.trigger, !outcome.fields.contains(where: { $0.1 == .count }) {
            event.fields.append(("count", .int(emission.number)))
        }
        return event
    }

    static func source(_ source: MapSource, _ emission: Emission, _ reading: MapReading, _ watched: MapField) -> JSONValue {
        switch source {
        case let .field(index): reading.value(index)
        case .count: .int(emission.number)
        case .from: .int(emission.number)
        }
    }

    /// Every event of a poll, in order: `evaluate` then `event` for each emission.
    public static func events(_ map: PolledMap, previous: [UInt16]?, current: [UInt16], device: String,
                              observedAt: Timestamp, utcOffsetSeconds: Int? = nil) -> [NormalisedEvent] {
        evaluate(map, previous: previous, current: current).map {
            event($0, map: map, image: current, device: device, observedAt: observedAt, utcOffsetSeconds: utcOffsetSeconds)
        }
    }
}

extension RuleEngine.Emission {
    /// The flag in a derived ring entry's `boot` that marks the last entry of a poll: the journal writer commits a
    /// poll's entries together and saves the image as the device's baseline with them.
    public static let lastOfPoll: UInt16 = 1

    /// The ring entry for this emission: rule and variant in `first`, the number's high and low halves in `seq`
    /// and `second`, and the image (at most 32 words) in `words`.
    public func record(device: UInt16, image: [UInt16], last: Bool, observedAtMillis: Int64) -> EventRecord {
        var record = EventRecord(origin: .derived, device: device, boot: last ? Self.lastOfPoll : 0,
                                 seq: UInt32(truncatingIfNeeded: UInt64(bitPattern: number) >> 32),
                                 first: UInt32(rule) & 0xFFFF | UInt32(variant.rawValue) << 16,
                                 second: UInt32(truncatingIfNeeded: number), observedAtMillis: observedAtMillis)
        for (i, word) in image.prefix(32).enumerated() { record.words[i] = word }
        return record
    }

    /// The emission a derived ring entry carries.
    public init(record: EventRecord) {
        self.init(rule: Int(record.first & 0xFFFF), variant: Variant(rawValue: UInt8(truncatingIfNeeded: record.first >> 16)) ?? .event,
                  number: Int64(bitPattern: UInt64(record.seq) << 32 | UInt64(record.second)))
    }
}

extension EventRecord {
    /// The image words a derived or baseline entry carries, `count` of them.
    public func image(count: Int) -> [UInt16] {
        (0..<min(count, 32)).map { words[$0] }
    }
}
