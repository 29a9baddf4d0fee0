import AccessModel
import DeviceProfiles
import ModbusTransport

/// Reads a device once through its profile: identity, state and the event log with its window.
/// The installer's commissioning check; it never acknowledges anything.
public struct DeviceProbe: Sendable {
    public struct Report: Sendable {
        public var identity: [(String, JSONValue)]
        public var state: [(String, JSONValue)]
        public var header: EventLogHeader?
        public var window: [NormalisedEvent]
        public var problems: [String]
        /// Device clock minus gateway clock, in seconds, when the identity has a clock.
        public var clockOffsetSeconds: Int64?
    }

    public let profile: DeviceProfile
    public let device: String

    public init(profile: DeviceProfile, device: String) {
        self.profile = profile
        self.device = device
    }

    /// Reads every block the profile describes over `connection` (blocking: call it on a bus thread).
    public func read(_ connection: ModbusConnection, unit: UInt8) throws(ModbusError) -> Report {
        var report = Report(identity: [], state: [], header: nil, window: [], problems: [], clockOffsetSeconds: nil)
        if let block = profile.identity {
            let words = try connection.readRegisters(unit: unit, address: block.address, count: Int(block.count))
            words.withUnsafeBufferPointer { buffer in
                let reading = RegisterReading(words: buffer, layout: profile.layout)
                report.identity = reading.presented(block)
                if let kindField = block.fields.first(where: { $0.name == "kind" }), let expected = profile.kindCode {
                    let actual = reading.integer(kindField)
                    if actual != expected {
                        report.problems.append("identity kind is \(actual), but profile \(profile.name) expects \(expected)")
                    }
                }
                if let clock = block.fields.first(where: { $0.name == "clock" }) {
                    report.clockOffsetSeconds = reading.integer(clock) - Timestamp.now.seconds
                }
            }
        }
        if let block = profile.state {
            let words = try connection.readRegisters(unit: unit, address: block.address, count: Int(block.count))
            report.state = words.withUnsafeBufferPointer { RegisterReading(words: $0, layout: profile.layout).presented(block) }
        }
        if let log = profile.eventLog, let decoder = RecordDecoder(profile: profile) {
            let words = try connection.readRegisters(unit: unit, address: log.address, count: Int(log.fullReadCount))
            words.withUnsafeBufferPointer { buffer in
                let header = log.header(from: buffer, layout: profile.layout)
                report.header = header
                let observedAt = Timestamp.now
                for index in 0..<min(Int(header.windowCount), log.windowRecords) {
                    let base = Int(log.windowOffset) + index * log.recordSize
                    let (event, problems) = decoder.event(of: buffer, base: base, device: device, boot: header.bootID, observedAt: observedAt)
                    report.window.append(event)
                    report.problems += problems.map { "record \(index): \($0)" }
                }
                if Int(header.windowCount) > log.windowRecords {
                    report.problems.append("window_count \(header.windowCount) exceeds the profile's \(log.windowRecords) records")
                }
            }
        }
        return report
    }
}
