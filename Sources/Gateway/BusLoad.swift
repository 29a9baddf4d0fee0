import AccessModel
import BusPolling
import ModbusTransport

/// How much of an RS-485 line the configured polling needs, from its baud rate and framing, the frame sizes of the
/// reads and the devices' poll intervals: `check` warns before a line that cannot carry its devices is installed.
public struct BusLoad: Sendable {
    public var bus: String
    public var devices: Int
    public var baud: Int
    /// Poll intervals of the bus's devices (shortest, longest), milliseconds.
    public var pollMillis: ClosedRange<Int64>
    /// Fraction of the line's time the idle polling needs (header reads and state polls, with the 3.5-character
    /// silences and the turnaround), before any backlog and before the devices' own response latency.
    public var fraction: Double

    /// Above this the line has no room left for backlogs, retries and device latency.
    public static let warningFraction = 0.8

    public var warning: String? {
        guard fraction >= Self.warningFraction else { return nil }
        let polls = pollMillis.lowerBound == pollMillis.upperBound ? "\(pollMillis.lowerBound) ms" : "\(pollMillis.lowerBound)-\(pollMillis.upperBound) ms"
        return "\(bus): \(devices) device\(devices == 1 ? "" : "s") at \(polls) need \(Int((fraction * 100).rounded())) % of the line "
            + "(\(baud) baud, idle polling only, before backlogs and device latency): poll less often or split the bus"
    }

    /// Nanoseconds of line time one read of `registers` holding registers takes: request (8 bytes) and reply
    /// (5 + 2 per register) characters, the silence before each frame, and the bus's turnaround.
    static func readNanoseconds(registers: Int, timing: RTULineTiming, turnaroundMillis: Int64) -> Double {
        Double(timing.frameNanoseconds(8 + 5 + 2 * registers)) + 2 * Double(timing.frameSilenceNanoseconds)
            + Double(turnaroundMillis) * 1e6
    }
}

extension GatewayConfiguration {
    /// The estimated load of each RTU bus (TCP buses have no shared line to saturate).
    public var busLoads: [BusLoad] {
        buses.compactMap { bus -> BusLoad? in
            guard case let .rtu(line) = bus.endpoint else { return nil }
            let onBus = devices.filter { $0.bus == bus.id }
            guard !onBus.isEmpty else { return nil }
            let timing = line.timing
            var nanosecondsPerSecond = 0.0
            for device in onBus {
                if let log = device.profile.eventLog {
                    // Idle RTU polls read the event log header alone.
                    nanosecondsPerSecond += 1000 / Double(device.pollMillis)
                        * BusLoad.readNanoseconds(registers: Int(log.headerCount), timing: timing, turnaroundMillis: bus.turnaroundMillis)
                }
                if let state = device.profile.state {
                    nanosecondsPerSecond += 1000 / Double(device.statePollMillis)
                        * BusLoad.readNanoseconds(registers: Int(state.count), timing: timing, turnaroundMillis: bus.turnaroundMillis)
                }
            }
            let polls = onBus.map(\.pollMillis)
            return BusLoad(bus: bus.id, devices: onBus.count, baud: line.baud, pollMillis: polls.min()!...polls.max()!,
                           fraction: nanosecondsPerSecond / 1e9)
        }
    }

    /// The warnings `check` prints and `run` logs at start.
    public var warnings: [String] { busLoads.compactMap(\.warning) }
}
