import AccessModel
import Foundation

/// Drives the event scenarios of many devices from one thread, waking when the next event is due.
///
/// `@unchecked Sendable` is safe because `emitted`, `stopping` and `thread` are only touched under `condition`.
public final class ScenarioDriver: @unchecked Sendable {
    private let entries: [(device: SimulatedDevice, scenario: EventScenario, mix: EventMix)]
    private let condition = NSCondition()
    private var emitted: [Int]
    private var stopping = false
    private var thread: JoinableThread?

    /// A driver for `devices`, each with its scenario; devices whose scenario is idle are left alone.
    public init(_ devices: [(SimulatedDevice, EventScenario)]) {
        entries = devices.filter { $0.1.isRunning }.map { ($0.0, $0.1, EventMix(kind: $0.0.kind, codes: $0.1.codes)) }
        emitted = [Int](repeating: 0, count: entries.count)
    }

    /// Starts recording events; does nothing when no scenario runs.
    public func start() {
        guard !entries.isEmpty else { return }
        let start = PreciseClock.now
        thread = JoinableThread { [self] in run(start: start) }
    }

    /// Stops recording events and waits for the driver thread.
    public func stop() {
        condition.withLock {
            stopping = true
            condition.broadcast()
        }
        thread?.join()
        thread = nil
    }

    private func run(start: UInt64) {
        while true {
            let elapsed = PreciseClock.now - start
            var nextWake = elapsed + 100_000_000
            for (i, entry) in entries.enumerated() {
                let due = entry.scenario.due(elapsedNanoseconds: elapsed)
                let pending = due - condition.withLock { emitted[i] }
                for _ in 0..<max(0, pending) { entry.device.recordRandom(entry.mix) }
                condition.withLock { emitted[i] = max(emitted[i], due) }
                nextWake = min(nextWake, nextDue(entry.scenario, after: elapsed))
            }
            let deadline = Date(timeIntervalSinceNow: Double(nextWake - min(nextWake, PreciseClock.now - start)) / 1e9)
            let stop = condition.withLock { () -> Bool in
                if !stopping { _ = condition.wait(until: deadline) }
                return stopping
            }
            if stop { return }
        }
    }

    /// When the scenario's next event falls due, in nanoseconds since start.
    private func nextDue(_ scenario: EventScenario, after elapsed: UInt64) -> UInt64 {
        var next = UInt64.max
        if scenario.rate > 0 {
            let count = (Double(elapsed) / 1e9 * scenario.rate).rounded(.down) + 1
            next = UInt64(count / scenario.rate * 1e9)
        }
        if let burst = scenario.burst {
            let period = UInt64(burst.everyMilliseconds) * 1_000_000
            next = min(next, (elapsed / period + 1) * period)
        }
        return next
    }
}
