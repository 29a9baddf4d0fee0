/// How a simulated device produces events over time: a steady rate, periodic bursts and a backlog at start.
public struct EventScenario: Sendable, Hashable {
    /// Events per second, spread evenly; 0 for none.
    public var rate: Double = 0
    /// `count` events at once every `everyMilliseconds`; nil for no bursts.
    public var burst: (count: Int, everyMilliseconds: Int)? {
        get { burstCount > 0 && burstEveryMilliseconds > 0 ? (burstCount, burstEveryMilliseconds) : nil }
        set {
            burstCount = newValue?.count ?? 0
            burstEveryMilliseconds = newValue?.everyMilliseconds ?? 0
        }
    }
    /// Events recorded before serving starts, as a device that was offline for a while.
    public var backlog: Int = 0
    /// Restrict drawn codes to these; nil for the kind's realistic mix.
    public var codes: [UInt16]?
    var burstCount = 0
    var burstEveryMilliseconds = 0

    public init(rate: Double = 0, burst: (count: Int, everyMilliseconds: Int)? = nil, backlog: Int = 0,
                codes: [UInt16]? = nil) {
        self.rate = rate
        self.backlog = backlog
        self.codes = codes
        self.burst = burst
    }

    /// No events at all.
    public static let idle = EventScenario()

    /// True when the scenario produces events after start.
    public var isRunning: Bool { rate > 0 || burst != nil }

    /// Events due `elapsedNanoseconds` after start, counting the rate and completed bursts.
    func due(elapsedNanoseconds: UInt64) -> Int {
        let seconds = Double(elapsedNanoseconds) / 1e9
        var total = Int(seconds * rate)
        if burstCount > 0, burstEveryMilliseconds > 0 {
            total += Int(elapsedNanoseconds / (UInt64(burstEveryMilliseconds) * 1_000_000)) * burstCount
        }
        return total
    }
}

extension SimulatedDevice {
    /// Records one event drawn from `mix`, using the device's own random generator.
    @discardableResult
    public func recordRandom(_ mix: EventMix) -> UInt32 {
        let draw = lock.withLock { mix.next(using: &random) }
        return record(code: draw.code, point: draw.point, direction: draw.direction, value: draw.value,
                      extra: draw.extra, subject: draw.subject)
    }

    /// Pre-fills the log with `count` realistic events, as a device that was offline for a while.
    public func fillBacklog(_ count: Int, codes: [UInt16]? = nil) {
        let mix = EventMix(kind: kind, codes: codes)
        for _ in 0..<count { recordRandom(mix) }
    }
}
