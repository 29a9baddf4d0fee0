/// Realistic per-kind events: codes in plausible proportions, person ids, cards, Chinese plates, floors, faults.
public struct EventMix: Sendable {
    /// One event ready to be recorded.
    public struct Draw: Sendable, Equatable {
        public var code: UInt16
        public var point: Int16 = 1
        public var direction: UInt8 = 0
        public var value: UInt32 = 0
        public var extra: UInt32 = 0
        public var subject: String = ""
    }

    public let kind: DeviceKind
    /// When set, only these codes are drawn (still with the kind's subjects and values).
    public var codes: [UInt16]?

    public init(kind: DeviceKind, codes: [UInt16]? = nil) {
        self.kind = kind
        self.codes = codes
    }

    /// The codes of the kind with their relative weights.
    var weights: [(UInt16, Int)] {
        switch kind {
        case .faceDoor: [(1, 600), (2, 80), (3, 40), (4, 20), (5, 100), (6, 30), (7, 40), (11, 10), (13, 50),
                         (16, 15), (17, 15), (18, 2), (19, 5), (21, 1)]
        case .plateReader: [(1, 650), (2, 100), (3, 80), (4, 30), (5, 10), (16, 60), (17, 60), (18, 2), (19, 5)]
        case .elevator: [(1, 700), (2, 100), (7, 120), (3, 20), (4, 20), (5, 10), (6, 10)]
        }
    }

    /// Draws the next event.
    public func next(using random: inout SeededRandom) -> Draw {
        let choices = codes.map { wanted in weights.filter { wanted.contains($0.0) } }.flatMap { $0.isEmpty ? nil : $0 }
            ?? weights
        var pick = Int.random(in: 0..<choices.reduce(0) { $0 + $1.1 }, using: &random)
        var code = choices[0].0
        for (candidate, weight) in choices {
            if pick < weight { code = candidate; break }
            pick -= weight
        }
        if let codes, !codes.isEmpty, !choices.contains(where: { codes.contains($0.0) }) {
            code = codes[Int.random(in: 0..<codes.count, using: &random)]
        }
        switch kind {
        case .faceDoor: return faceDoor(code, &random)
        case .plateReader: return plateReader(code, &random)
        case .elevator: return elevator(code, &random)
        }
    }

    private func faceDoor(_ code: UInt16, _ r: inout SeededRandom) -> Draw {
        var draw = Draw(code: code, point: 1, direction: UInt8.random(in: 1...2, using: &r))
        switch code {
        case 1, 3, 10, 21: draw.subject = Self.person(&r); draw.value = UInt32.random(in: 850...990, using: &r)
        case 2, 4: draw.value = UInt32.random(in: 300...700, using: &r)
        case 5, 6: draw.subject = String(UInt64.random(in: 1_000_000_000...4_294_967_295, using: &r))
        case 7: draw.subject = "V-\(Int.random(in: 100_000...999_999, using: &r))"
        case 19: draw.value = UInt32.random(in: 30...300, using: &r)
        default: draw.direction = 0
        }
        return draw
    }

    private func plateReader(_ code: UInt16, _ r: inout SeededRandom) -> Draw {
        var draw = Draw(code: code, point: 1, direction: 1)
        let (plate, colour, type) = Self.plate(&r)
        switch code {
        case 1, 2, 3, 5:
            draw.subject = plate
            draw.value = UInt32.random(in: 850...990, using: &r)
            draw.extra = UInt32(type) << 16 | UInt32(colour)
        case 4: draw.value = UInt32.random(in: 200...600, using: &r)
        default: draw.direction = 0
        }
        return draw
    }

    private func elevator(_ code: UInt16, _ r: inout SeededRandom) -> Draw {
        let floor = Int16.random(in: -2...32, using: &r)
        var draw = Draw(code: code, point: floor == 0 ? 1 : floor, direction: UInt8.random(in: 1...2, using: &r))
        switch code {
        case 1, 2:
            draw.value = UInt32.random(in: 1...3, using: &r)
            draw.subject = draw.value == 2 ? String(UInt64.random(in: 1_000_000_000...4_294_967_295, using: &r))
                : Self.person(&r)
            let own = draw.point > 0 ? UInt32(1) << UInt32(draw.point - 1) : 0
            draw.extra = code == 1 ? own | 1 : 1
        case 3, 4:
            draw.value = UInt32.random(in: 1...13, using: &r)
            draw.extra = code == 3 && Bool.random(using: &r) ? 1 : 0
        case 6: draw.value = UInt32.random(in: 0...3, using: &r)
        default: draw.direction = 0
        }
        return draw
    }

    static func person(_ r: inout SeededRandom) -> String {
        let n = String(Int.random(in: 1...9999, using: &r))
        return "P-" + String(repeating: "0", count: 4 - n.count) + n
    }

    /// A Chinese plate with its colour and vehicle type: blue car 云A12345, green new-energy 云AD12345, yellow truck.
    static func plate(_ r: inout SeededRandom) -> (String, UInt16, UInt16) {
        let province = ["云", "云", "云", "川", "贵", "粤", "京"][Int.random(in: 0..<7, using: &r)]
        let letter = Array("ABCDEFGHJK")[Int.random(in: 0..<10, using: &r)]
        let digits = (0..<5).map { _ in String(Int.random(in: 0...9, using: &r)) }.joined()
        switch Int.random(in: 0..<10, using: &r) {
        case 0...5: return ("\(province)\(letter)\(digits)", 1, UInt16.random(in: 1...2, using: &r))
        case 6...8: return ("\(province)\(letter)D\(digits)", 5, 1)
        default: return ("\(province)\(letter)\(digits)", 2, 3)
        }
    }
}
