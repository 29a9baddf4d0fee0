import AccessModel
import BusPolling
import DeviceProfiles
import EventRing
import Foundation
import Logging
import ModbusTransport
import Simulators
import Synchronization
import TestSupport

/// A real bus poller on its own thread against simulators over a real socket or pty, with a stand-in for the
/// journal writer: it takes every entry off the ring, keeps it, and posts the commit mark as the writer does
/// (duplicates included, as the journal recognises them by boot and seq).
final class PollerHarness: @unchecked Sendable {
    // @unchecked: the poller and the ring are thread-safe; `entries` is behind its mutex; the rest is immutable.
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    let poller: BusPoller
    let links: [DeviceLink]
    let ring = EventRing<EventRecord>(minimumCapacity: 256)
    let bell = RingDoorbell()
    let board: DeviceStateBoard
    let entries = Mutex<[EventRecord]>([])
    let log: LogCapture
    private let stopping = Atomic<Bool>(false)
    private var writer: Thread?
    private let writerDone = DispatchSemaphore(value: 0)

    /// Polls `units` (face doors unless `profile` says otherwise) on `endpoint`.
    init(endpoint: BusEndpoint, units: [UInt8], profile: String = "face-door", pollMillis: Int64 = 20,
         statePollMillis: Int64 = 100, timeSync: Bool = false, timeoutMillis: Int64 = 200,
         hostClock: HostClock.Status = .synchronised, serialCheckMillis: Int64 = 300_000) throws {
        let profile = try ProfileLibrary(directories: [Self.repository.appendingPathComponent("Devices").path]).profile(profile)
        let devices = units.enumerated().map { index, unit in
            var device = DeviceConfiguration(id: "dev-\(unit)", slot: UInt16(index), unit: unit, profile: profile, pollMillis: pollMillis,
                                             statePollMillis: statePollMillis, timeSync: timeSync)
            device.serialCheckMillis = serialCheckMillis
            return device
        }
        links = devices.map { DeviceLink(id: $0.id, bus: "test") }
        board = DeviceStateBoard(deviceCount: devices.count)
        log = LogCapture()
        let capture = log
        var logger = Logger(label: "poller-test") { _ in capture }
        logger.logLevel = .debug
        poller = try BusPoller(bus: BusConfiguration(id: "test", endpoint: endpoint, timeoutMillis: timeoutMillis, turnaroundMillis: 0),
                               devices: devices, links: links, ring: ring, journalBell: bell, board: board, logger: logger,
                               hostClock: { hostClock })
    }

    func start() {
        let thread = Thread { [self] in
            while !stopping.load(ordering: .relaxed) {
                var batch: [EventRecord] = []
                _ = ring.drain(max: 64) { batch.append($0) }
                if batch.isEmpty {
                    _ = bell.wait(timeout: .milliseconds(50)) { !ring.isEmpty || stopping.load(ordering: .relaxed) }
                    continue
                }
                entries.withLock { $0 += batch }
                for record in batch where record.origin == .device {
                    links[Int(record.device)].committed(boot: record.boot, seq: record.seq)
                    poller.wakeBell.ring()
                }
            }
            writerDone.signal()
        }
        writer = thread
        thread.start()
        poller.start()
    }

    func stop() {
        poller.stop()
        stopping.store(true, ordering: .relaxed)
        bell.ring()
        if writer != nil { writerDone.wait() }
        writer = nil
    }

    deinit { stop() }

    var all: [EventRecord] { entries.withLock { $0 } }

    /// (boot, seq) of the device records of `slot`, in ring order, duplicates included.
    func seqs(slot: UInt16 = 0) -> [UInt32] { all.filter { $0.origin == .device && $0.device == slot }.map(\.seq) }

    /// Distinct seqs of `slot` in order of first appearance.
    func distinctSeqs(slot: UInt16 = 0) -> [UInt32] {
        var seen = Set<UInt32>()
        return seqs(slot: slot).filter { seen.insert($0).inserted }
    }

    func count(_ origin: EventRecord.Origin, slot: UInt16 = 0) -> Int { all.filter { $0.origin == origin && $0.device == slot }.count }
}

/// Keeps every log line a component writes, for tests that check what an operator is told.
final class LogCapture: LogHandler, @unchecked Sendable {
    // @unchecked: `lines` is behind its mutex; swift-log copies the handler value, all copies share the storage.
    private let storage = Mutex<[(line: String, kind: String?)]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
             function: String, line: UInt) {
        let kind = (metadata?[LogKind.key] ?? self.metadata[LogKind.key]).map { "\($0)" }
        storage.withLock { $0.append(("\(level) \(message)", kind)) }
    }

    var lines: [String] { storage.withLock { $0.map(\.line) } }

    /// The `log.kind` of each line containing `text` (nil: untagged), which decides whether the gateway's log
    /// handler rate-limits it.
    func kinds(containing text: String) -> [String?] { storage.withLock { $0.filter { $0.line.contains(text) }.map(\.kind) } }

    func count(containing text: String) -> Int { lines.filter { $0.contains(text) }.count }
}
