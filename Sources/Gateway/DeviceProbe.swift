import AccessModel
import DeviceProfiles
import ModbusTransport

/// Where a probe's reads go: a connection of its own (`probe`, `check --online`), or the running daemon's bus
/// thread, one transaction at a time between two polls (`GatewayRuntime.probe`).
public protocol ProbeLine {
    func readRegisters(unit: UInt8, address: UInt16, count: Int) throws(ModbusError) -> [UInt16]
    func readRegisters(unit: UInt8, address: UInt16, count: Int, input: Bool, into buffer: UnsafeMutablePointer<UInt16>) throws(ModbusError)
    func readBits(unit: UInt8, address: UInt16, count: Int, discreteInputs: Bool, into bits: UnsafeMutablePointer<UInt8>) throws(ModbusError)
}

extension ModbusConnection: ProbeLine {}

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
        /// Map 2: each request of a poll with the words or bits it read.
        public var blocks: [String] = []
        /// Map 2: each rule, what it follows now, and the event it would emit if it fired on these values.
        public var rules: [String] = []
    }

    public let profile: DeviceProfile
    public let device: String

    public init(profile: DeviceProfile, device: String) {
        self.profile = profile
        self.device = device
    }

    /// Reads every block the profile describes over `connection` (blocking: call it on a bus thread).
    public func read(_ connection: some ProbeLine, unit: UInt8) throws(ModbusError) -> Report {
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
        if let map = profile.map { try readMap(map, connection, unit: unit, into: &report) }
        return report
    }

    /// Map 2: every request, the state fields, and what each rule follows and would emit.
    func readMap(_ map: PolledMap, _ connection: some ProbeLine, unit: UInt8, into report: inout Report) throws(ModbusError) {
        let image = try map.readImage(registers: { read, words throws(ModbusError) in
            try connection.readRegisters(unit: unit, address: read.address, count: read.count, input: read.table == .input, into: words)
            let hex = (0..<read.count).map { i in "0x" + String(words[i], radix: 16, uppercase: true) }
            report.blocks.append("\(read.table.rawValue) \(read.address)+\(read.count): " + hex.joined(separator: " "))
        }, bits: { read, bits throws(ModbusError) in
            try connection.readBits(unit: unit, address: read.address, count: read.count, discreteInputs: read.table == .discreteInputs, into: bits)
            report.blocks.append("\(read.table.rawValue) \(read.address)+\(read.count): " + (0..<read.count).map { String(bits[$0]) }.joined())
        })
        let reading = MapReading(map: map, image: image)
        report.state = map.fields.indices.map { (map.fields[$0].name, reading.value($0)) }
        for (index, rule) in map.rules.enumerated() {
            let watched = map.fields[rule.trigger.watched]
            let now = reading.raw(rule.trigger.watched).map(String.init) ?? "no value"
            let follows: String
            var number: Int64 = 1
            switch rule.trigger {
            case let .change(_, bit, from, to):
                follows = "change of \(watched.name)\(bit.map { " bit \($0)" } ?? "") \(from) → \(to), now \(reading.raw(rule.trigger.watched, bit: bit).map(String.init) ?? "no value")"
                number = reading.raw(rule.trigger.watched, bit: bit) ?? 0
            case .counter: follows = "counter \(watched.name), now \(now)"
            case .latest: follows = "latest event, counter \(watched.name) now \(now)"
            }
            let event = RuleEngine.event(.init(rule: index, variant: .event, number: number), map: map, image: image,
                                         device: device, observedAt: .now)
            let fields = event.fields.map { "\($0.0) \(DeviceProbe.Report.text($0.1))" }.joined(separator: ", ")
            report.rules.append("\(index + 1) (line \(rule.line)) \(follows); would emit \(event.type)\(event.alarm ? " (alarm)" : "")  \(fields)")
        }
    }
}
