import AccessModel

/// Reads the fields of a map-2 image: raw numbers for the rules, presented values for state and events.
/// Any image decodes without trapping: registers past its end read 0, a BCD nibble above 9 or an impossible
/// date-time reads as no value (`null`), a float that is not finite as `null`.
public struct MapReading: Sendable {
    public let map: PolledMap
    public let image: [UInt16]
    /// The device's offset from UTC for `bcd_time` fields.
    public let utcOffsetSeconds: Int

    public init(map: PolledMap, image: [UInt16], utcOffsetSeconds: Int? = nil) {
        self.map = map
        self.image = image
        self.utcOffsetSeconds = utcOffsetSeconds ?? map.utcOffsetSeconds
    }

    func word(_ index: Int, _ field: MapField) -> UInt16 {
        let w = index >= 0 && index < image.count ? image[index] : 0
        return field.byteOrder == .big ? w : w.byteSwapped
    }

    /// The field's registers in order of significance (most significant first), after byte and word order.
    func registers(_ field: MapField) -> [UInt16] {
        let base = map.blocks[field.block].imageOffset + field.offset
        let words = (0..<field.span).map { word(base + $0, field) }
        return field.wordOrder == .highFirst ? words : words.reversed()
    }

    func bit(_ field: MapField, _ index: Int) -> UInt64 {
        let base = map.blocks[field.block].imageOffset
        let at = field.offset + index
        let w = base + at / 16
        guard w < image.count else { return 0 }
        return UInt64(image[w] >> UInt16(at % 16) & 1)
    }

    /// The field as a whole number before presentation (BCD as its decimal value, signed types sign-extended,
    /// a u64 by bit pattern); nil for text, times, floats and invalid BCD.
    public func raw(_ index: Int) -> Int64? {
        let field = map.fields[index]
        var value: Int64
        switch field.type {
        case .bit: value = Int64(bit(field, 0))
        case .bits:
            var v: UInt64 = 0
            for i in 0..<min(field.bitCount, 64) { v |= bit(field, i) << UInt64(i) }
            value = Int64(bitPattern: v)
        case .u16, .bool: value = Int64(registers(field)[0])
        case .i16: value = Int64(Int16(bitPattern: registers(field)[0]))
        case .u32, .i32, .u64, .i64:
            let v = registers(field).reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
            switch field.type {
            case .u32: value = Int64(v)
            case .i32: value = Int64(Int32(truncatingIfNeeded: v))
            default: value = Int64(bitPattern: v)
            }
        case .bcd16, .bcd32:
            guard let v = Self.bcd(registers(field)) else { return nil }
            value = v
        case .float32, .string, .bcdTime: return nil
        }
        if field.shift > 0 { value = Int64(bitPattern: UInt64(bitPattern: value) >> UInt64(field.shift)) }
        if let mask = field.mask { value = Int64(bitPattern: UInt64(bitPattern: value) & mask) }
        return value
    }

    /// The number the rules compare: the field's raw value, or one bit of it.
    public func raw(_ index: Int, bit: Int?) -> Int64? {
        guard let value = raw(index) else { return nil }
        guard let bit else { return value }
        return value >> Int64(bit) & 1
    }

    /// Decimal digits, most significant first, four per register; nil when a nibble is above 9.
    static func bcd(_ registers: [UInt16]) -> Int64? {
        var value: Int64 = 0
        for register in registers {
            for shift in stride(from: 12, through: 0, by: -4) {
                let digit = Int64(register >> UInt16(shift) & 0xF)
                guard digit <= 9 else { return nil }
                value = value * 10 + digit
            }
        }
        return value
    }

    /// A `bcd_time` field in UTC, using the device's offset; nil for invalid digits or an impossible date.
    public func time(_ index: Int) -> Timestamp? {
        let field = map.fields[index]
        guard field.type == .bcdTime else {
            guard case .unixTime = field.presentation, let seconds = raw(index) else { return nil }
            return Timestamp(millisecondsSinceEpoch: seconds.multipliedReportingOverflow(by: 1000).partialValue)
        }
        var nibbles: [Int] = []
        for register in registers(field) {
            for shift in stride(from: 12, through: 0, by: -4) { nibbles.append(Int(register >> UInt16(shift) & 0xF)) }
        }
        var parts: [Character: Int] = [:]
        for (position, letter) in field.timePattern.enumerated() where letter != "_" {
            let digit = nibbles[position]
            guard digit <= 9 else { return nil }
            parts[letter, default: 0] = parts[letter, default: 0] * 10 + digit
        }
        var year = parts["Y", default: 0]
        if field.timePattern.filter({ $0 == "Y" }).count <= 2 { year += 2000 }
        let month = parts["M", default: 1], day = parts["D", default: 1]
        let hour = parts["h", default: 0], minute = parts["m", default: 0], second = parts["s", default: 0]
        guard (1...12).contains(month), (1...Self.daysIn(month: month, year: year)).contains(day),
              hour < 24, minute < 60, second < 60 else { return nil }
        let days = Self.daysFromCivil(year: year, month: month, day: day)
        let local = days * 86400 + Int64(hour * 3600 + minute * 60 + second)
        return Timestamp(millisecondsSinceEpoch: (local - Int64(utcOffsetSeconds)) * 1000)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The field for people and JSON: text, times, enum words, flag names, scaled numbers; `null` when the
    /// registers hold no valid value.
    public func value(_ index: Int) -> JSONValue {
        let field = map.fields[index]
        switch field.type {
        case .string:
            var bytes: [UInt8] = []
            for register in (0..<field.span).map({ word(map.blocks[field.block].imageOffset + field.offset + $0, field) }) {
                bytes.append(UInt8(register >> 8))
                bytes.append(UInt8(register & 0xFF))
            }
            let text = Array(bytes.prefix(field.length))
            do { return .string(try field.encoding.decode(text)) } catch {
                return .string(String(decoding: text.prefix { $0 != 0 }, as: UTF8.self))
            }
        case .bcdTime:
            return time(index).map { .string($0.rfc3339) } ?? .null
        case .float32:
            let bits = registers(field).reduce(UInt32(0)) { $0 << 16 | UInt32($1) }
            return Self.scaled(Double(Float(bitPattern: bits)), field)
        default:
            break
        }
        guard let n = raw(index) else { return .null }
        switch field.presentation {
        case let .words(table): return .string(table[n] ?? "unknown_\(n)")
        case let .flags(bits): return .array(bits.keys.sorted().filter { n >> Int64($0) & 1 != 0 }.map { .string(bits[$0]!) })
        case .decimal:
            let unsigned = field.type == .u64 || field.type == .bits
            return .string(unsigned ? String(UInt64(bitPattern: n)) : String(n))
        case .unixTime: return time(index).map { .string($0.rfc3339) } ?? .null
        case .number:
            if field.type == .bool || field.type == .bit, field.scale == nil, field.add == nil { return .bool(n != 0) }
            if field.scale != nil || field.add != nil {
                return Self.scaled(field.type == .u64 ? Double(UInt64(bitPattern: n)) : Double(n), field)
            }
            if field.type == .u64, n < 0 { return .string(String(UInt64(bitPattern: n))) }
            return .int(n)
        }
    }

    static func scaled(_ value: Double, _ field: MapField) -> JSONValue {
        let result = value * (field.scale ?? 1) + (field.add ?? 0)
        return result.isFinite ? .double(result) : .null
    }

    /// The fields published as state, presented.
    public func state() -> [(String, JSONValue)] {
        map.state.map { (map.fields[$0].name, value($0)) }
    }
}

/// Writes values into a map-2 image the way a device's registers would hold them: what the simulators serve
/// and the tests build images with. The inverse of `MapReading` for raw numbers, floats, text and times.
public struct MapWriting: Sendable {
    public let map: PolledMap
    public var image: [UInt16]
    public let utcOffsetSeconds: Int

    public init(map: PolledMap, image: [UInt16]? = nil, utcOffsetSeconds: Int? = nil) {
        self.map = map
        self.image = image ?? [UInt16](repeating: 0, count: map.imageWords)
        self.utcOffsetSeconds = utcOffsetSeconds ?? map.utcOffsetSeconds
    }

    mutating func put(_ field: MapField, significance registers: [UInt16]) {
        let ordered = field.wordOrder == .highFirst ? registers : registers.reversed()
        let base = map.blocks[field.block].imageOffset + field.offset
        for (i, w) in ordered.enumerated() where base + i < image.count {
            image[base + i] = field.byteOrder == .big ? w : w.byteSwapped
        }
    }

    mutating func putBits(_ field: MapField, _ value: UInt64, count: Int) {
        let base = map.blocks[field.block].imageOffset
        for i in 0..<count {
            let at = field.offset + i
            let bit = UInt16(1) << UInt16(at % 16)
            if value >> UInt64(i) & 1 == 1 { image[base + at / 16] |= bit } else { image[base + at / 16] &= ~bit }
        }
    }

    /// Sets the field named `name` to the raw number `value` (shift and mask are not inverted: give what the
    /// register holds). BCD fields take the decimal value.
    public mutating func set(_ name: String, _ value: Int64) {
        guard let index = map.field(named: name) else { preconditionFailure("no field \(name)") }
        let field = map.fields[index]
        let bits = UInt64(bitPattern: value)
        switch field.type {
        case .bit: putBits(field, bits & 1, count: 1)
        case .bits: putBits(field, bits, count: field.bitCount)
        case .u16, .i16, .bool: put(field, significance: [UInt16(truncatingIfNeeded: bits)])
        case .u32, .i32: put(field, significance: [UInt16(truncatingIfNeeded: bits >> 16), UInt16(truncatingIfNeeded: bits)])
        case .u64, .i64: put(field, significance: [48, 32, 16, 0].map { UInt16(truncatingIfNeeded: bits >> $0) })
        case .bcd16, .bcd32: put(field, significance: Self.bcd(value, registers: field.span))
        case .float32: set(name, float: Double(value))
        case .string, .bcdTime: preconditionFailure("\(name) is not a number")
        }
    }

    public mutating func set(_ name: String, float value: Double) {
        guard let index = map.field(named: name), map.fields[index].type == .float32 else { preconditionFailure("no float field \(name)") }
        let bits = Float(value).bitPattern
        put(map.fields[index], significance: [UInt16(bits >> 16), UInt16(truncatingIfNeeded: bits)])
    }

    public mutating func set(_ name: String, text: String) {
        guard let index = map.field(named: name), map.fields[index].type == .string else { preconditionFailure("no string field \(name)") }
        let field = map.fields[index]
        var bytes = (try? field.encoding.encode(text, length: field.length)) ?? [UInt8](repeating: 0, count: field.length)
        if bytes.count % 2 == 1 { bytes.append(0) }
        put(field, significance: stride(from: 0, to: bytes.count, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) })
    }

    /// Sets a `bcd_time` field to `time` in the device's local time.
    public mutating func set(_ name: String, time: Timestamp) {
        guard let index = map.field(named: name), map.fields[index].type == .bcdTime else { preconditionFailure("no bcd_time field \(name)") }
        let field = map.fields[index]
        let local = time.seconds + Int64(utcOffsetSeconds)
        let days = local >= 0 ? local / 86400 : (local - 86399) / 86400
        let secondOfDay = Int(local - days * 86400)
        let (year, month, day) = Self.civil(fromDays: days)
        let parts: [Character: Int] = ["Y": year, "M": month, "D": day, "h": secondOfDay / 3600,
                                       "m": secondOfDay / 60 % 60, "s": secondOfDay % 60]
        var nibbles = [Int](repeating: 0, count: field.span * 4)
        var remaining = parts
        for (position, letter) in field.timePattern.enumerated().reversed() where letter != "_" {
            nibbles[position] = remaining[letter, default: 0] % 10
            remaining[letter, default: 0] /= 10
        }
        put(field, significance: (0..<field.span).map { r in
            (0..<4).reduce(UInt16(0)) { $0 << 4 | UInt16(nibbles[r * 4 + $1]) }
        })
    }

    static func bcd(_ value: Int64, registers: Int) -> [UInt16] {
        var rest = UInt64(bitPattern: value)
        var words = [UInt16](repeating: 0, count: registers)
        for r in (0..<registers).reversed() {
            for nibble in 0..<4 {
                words[r] |= UInt16(rest % 10) << UInt16(nibble * 4)
                rest /= 10
            }
        }
        return words
    }

    static func civil(fromDays days: Int64) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (Int(yoe + era * 400 + (month <= 2 ? 1 : 0)), Int(month), Int(day))
    }
}
