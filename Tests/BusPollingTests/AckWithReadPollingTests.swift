import AccessModel
import BusPolling
import Foundation
import ModbusTransport
import Simulators
import Testing
import TestSupport

/// The shipped profiles say `ack_with_read: true`: a real bus poller writes ack_seq and reads the next window in one
/// function 23 transaction, over a real socket and a real pty, and falls back to function 16 then 03, per device and
/// for good, when a device shows it does not take function 23, losing nothing and acking nothing twice.
@Suite("bus poller acking with function 23, and its fallback to 16 + 03")
struct AckWithReadPollingTests {
    enum Line: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case tcp, rtu
        var testDescription: String { rawValue.uppercased() }
    }

    /// A poller on `line` against `devices` (units as given), not yet started, and what keeps the line open.
    func poller(_ line: Line, _ devices: [SimulatedDevice], timeoutMillis: Int64 = 300) async throws -> (PollerHarness, AnyObject) {
        switch line {
        case .tcp:
            let server = try TCPServerBox(devices)
            let harness = try PollerHarness(endpoint: .tcp(host: "127.0.0.1", port: Int(server.server.port)),
                                            units: devices.map(\.unit), timeoutMillis: timeoutMillis)
            return (harness, server)
        case .rtu:
            let line = try await RTULineBox(devices)
            let harness = try PollerHarness(endpoint: .rtu(SerialLine(device: line.pair.masterEnd, baud: 115_200)),
                                            units: devices.map(\.unit), timeoutMillis: timeoutMillis)
            return (harness, line)
        }
    }

    @Test(arguments: Line.allCases)
    func drainsWithOneTransactionPerWindow(line: Line) async throws {
        let door = SimulatedDevice(kind: .faceDoor, unit: 1)
        for _ in 0..<30 { door.record(code: 16, point: 1) }
        let (harness, box) = try await poller(line, [door])
        harness.start()
        try await waitUntil("30 events acknowledged (ack \(door.logStatus.ack))", timeout: .seconds(30)) { door.logStatus.ack == 30 }
        for _ in 0..<6 { door.record(code: 17, point: 1) }
        try await waitUntil("6 more acknowledged (ack \(door.logStatus.ack))", timeout: .seconds(30)) { door.logStatus.ack == 36 }
        harness.stop()
        #expect(harness.seqs() == Array(1...36), "every event put on the ring once, in order")
        #expect(harness.count(.eventsLost) == 0)
        // 12 windows of 3: every ack but none went with the next read (the last ack may go with a read of nothing new).
        #expect(door.function23Requests >= 12, "acks written with function 23: \(door.function23Requests)")
        #expect(harness.log.count(containing: "ack_with_read") == 0, "no fallback: \(harness.log.lines)")
        withExtendedLifetime(box) {}
    }

    /// A device that knows only 03/06/16 answers exception 01: one warning, function 16 then 03 from then on.
    @Test(arguments: Line.allCases)
    func illegalFunctionFallsBackForGood(line: Line) async throws {
        var faults = DeviceFaults()
        faults.refuseFunction23 = true
        let plain = SimulatedDevice(kind: .faceDoor, unit: 1, faults: faults)
        let modern = SimulatedDevice(kind: .faceDoor, unit: 2)
        for device in [plain, modern] { for _ in 0..<12 { device.record(code: 16, point: 1) } }
        let (harness, box) = try await poller(line, [plain, modern])
        harness.start()
        try await waitUntil("both drained (acks \(plain.logStatus.ack), \(modern.logStatus.ack))", timeout: .seconds(30)) {
            plain.logStatus.ack == 12 && modern.logStatus.ack == 12
        }
        for _ in 0..<6 { plain.record(code: 17, point: 1) }
        try await waitUntil("6 more acknowledged with function 16", timeout: .seconds(30)) { plain.logStatus.ack == 18 }
        harness.stop()
        #expect(harness.seqs(slot: 0) == Array(1...18) && harness.seqs(slot: 1) == Array(1...12))
        #expect(plain.function23Requests == 1, "asked once, then never again")
        #expect(modern.function23Requests >= 4, "the other device on the bus keeps function 23")
        #expect(harness.log.lines.filter { $0.contains("ack_with_read") }
            == ["warning device profile says ack_with_read, but it answered function 23 with device answered exception 01 (illegal function); acking with function 16, then reading with 03, from now on"])
        withExtendedLifetime(box) {}
    }

    /// A device that puts the function 23 write into its ack_seq register but not into its log: the reply shows the
    /// window not moved on. Nothing of that read is used, the same ack goes again with function 16, nothing is lost
    /// and nothing put on the ring twice.
    @Test(arguments: Line.allCases)
    func aWriteThatMissesTheLogFallsBackWithoutLossOrDuplicates(line: Line) async throws {
        var faults = DeviceFaults()
        faults.function23SkipsLog = true
        let door = SimulatedDevice(kind: .faceDoor, unit: 1, faults: faults)
        for _ in 0..<10 { door.record(code: 16, point: 1) }
        let (harness, box) = try await poller(line, [door])
        harness.start()
        try await waitUntil("10 acknowledged (ack \(door.logStatus.ack))", timeout: .seconds(30)) { door.logStatus.ack == 10 }
        for _ in 0..<5 { door.record(code: 17, point: 1) }
        try await waitUntil("15 acknowledged", timeout: .seconds(30)) { door.logStatus.ack == 15 }
        harness.stop()
        #expect(harness.seqs() == Array(1...15), "every event on the ring exactly once")
        #expect(harness.count(.eventsLost) == 0)
        #expect(door.function23Requests == 1)
        #expect(harness.log.count(containing: "but its window starts at seq 1 after function 23 wrote ack_seq 3") == 1, "\(harness.log.lines)")
        withExtendedLifetime(box) {}
    }

    /// On RS-485 an ack that leaves nothing unread goes with a header-only read, which cannot show the window: the
    /// next full read of that boot does, before anything of it is used.
    @Test func aWriteThatMissesTheLogIsFoundByTheNextWindowAfterAHeaderOnlyAck() async throws {
        var faults = DeviceFaults()
        faults.function23SkipsLog = true
        let door = SimulatedDevice(kind: .faceDoor, unit: 1, faults: faults)
        for _ in 0..<3 { door.record(code: 16, point: 1) }
        let (harness, box) = try await poller(.rtu, [door])
        harness.start()
        try await waitUntil("the ack of 3 written with function 23", timeout: .seconds(30)) { door.function23Requests == 1 }
        #expect(door.logStatus.ack == 0, "the fault kept it from the log")
        for _ in 0..<3 { door.record(code: 17, point: 1) }
        try await waitUntil("6 acknowledged (ack \(door.logStatus.ack))", timeout: .seconds(30)) { door.logStatus.ack == 6 }
        harness.stop()
        #expect(harness.seqs() == Array(1...6), "every event on the ring exactly once")
        #expect(door.function23Requests == 1)
        #expect(harness.log.count(containing: "but its window starts at seq 1 after function 23 wrote ack_seq 3") == 1, "\(harness.log.lines)")
        withExtendedLifetime(box) {}
    }

    /// A device that drops function 23 requests without a word: one timeout, a plain read answers, fallback.
    @Test func aDeviceSilentToFunction23FallsBackWhenAPlainReadAnswers() async throws {
        var faults = DeviceFaults()
        faults.ignoreFunction23 = true
        let door = SimulatedDevice(kind: .faceDoor, unit: 1, faults: faults)
        for _ in 0..<9 { door.record(code: 16, point: 1) }
        let (harness, box) = try await poller(.tcp, [door], timeoutMillis: 200)
        harness.start()
        try await waitUntil("9 acknowledged (ack \(door.logStatus.ack))", timeout: .seconds(30)) { door.logStatus.ack == 9 }
        harness.stop()
        #expect(harness.seqs() == Array(1...9))
        #expect(harness.count(.deviceOffline) == 0)
        #expect(harness.log.count(containing: "but function 23 got no reply within 200ms while a plain read (function 03) then answered") == 1,
                "\(harness.log.lines)")
        withExtendedLifetime(box) {}
    }

    /// A converter that garbles function 23's replies (byte count two short): a bad reply, a plain read answers,
    /// fallback; over TCP and RTU.
    @Test(arguments: Line.allCases)
    func garbledRepliesToFunction23FallBackWhenAPlainReadAnswers(line: Line) async throws {
        var faults = DeviceFaults()
        faults.garbleFunction23 = true
        let door = SimulatedDevice(kind: .faceDoor, unit: 1, faults: faults)
        for _ in 0..<9 { door.record(code: 16, point: 1) }
        let (harness, box) = try await poller(line, [door])
        harness.start()
        try await waitUntil("9 acknowledged (ack \(door.logStatus.ack))", timeout: .seconds(30)) { door.logStatus.ack == 9 }
        harness.stop()
        #expect(harness.seqs() == Array(1...9))
        #expect(door.function23Requests == 1)
        // TCP: the MBAP length no longer matches; RTU: the CRC is read from the data.
        #expect(harness.log.lines.filter { $0.contains("but function 23 got ") && $0.contains("while a plain read (function 03) then answered") }.count == 1,
                "\(harness.log.lines)")
        withExtendedLifetime(box) {}
    }

    /// Issue 7 finding 1 through function 23: exception 03 to its write (ack_seq above head_seq, here a garbled write)
    /// is a refused ack: the log is read again from the device's own ack_seq after a pause, and acking goes on.
    @Test(arguments: Line.allCases)
    func aRefusedAckThroughFunction23IsARefusedAck(line: Line) async throws {
        let door = SimulatedDevice(kind: .faceDoor, unit: 1, capacity: 30)
        for _ in 0..<6 { door.record(code: 16, point: 1) }
        door.refuseAcks(2)
        let (harness, box) = try await poller(line, [door])
        harness.start()
        try await waitUntil("6 acknowledged after 2 refusals (ack \(door.logStatus.ack))", timeout: .seconds(30)) { door.logStatus.ack == 6 }
        for _ in 0..<9 { door.record(code: 17, point: 1) }
        try await waitUntil("15 acknowledged", timeout: .seconds(30)) { door.logStatus.ack == 15 }
        harness.stop()
        #expect(harness.distinctSeqs() == Array(1...15))
        #expect(harness.count(.eventsLost) == 0)
        #expect(harness.log.count(containing: "device refused ack_seq 3 (device answered exception 03 (illegal data value))") == 2)
        #expect(harness.log.count(containing: "ack_with_read") == 0, "two refusals are no reason to fall back")
        #expect(door.function23Requests >= 4, "function 23 again once an ack is taken")
        withExtendedLifetime(box) {}
    }
}

/// An RTU simulator on a pty pair at 115200 baud, stopped when released.
final class RTULineBox: @unchecked Sendable {
    // @unchecked: the server is itself thread-safe; the pair is immutable.
    let pair: SerialPair
    let server: ModbusRTUServer
    init(_ devices: [SimulatedDevice]) async throws {
        pair = try await SerialPair.start()
        server = ModbusRTUServer(path: pair.deviceEnd, settings: SerialLineSettings(baud: 115_200), devices: devices)
        try server.start()
    }
    deinit {
        server.stop()
        pair.stop()
    }
}
