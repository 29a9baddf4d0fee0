import AccessModel
import BusPolling
import Foundation
import ModbusTransport
import Simulators
import Testing
import TestSupport

/// A real bus poller against faulty simulators over real sockets (issue 7 findings 1, 2, 5 and 8): nothing is
/// lost, acking never stops, and a garbled or refusing device costs its bus what SPEC 5.5 allows.
@Suite("bus poller against faulty devices")
struct DeviceFaultPollingTests {
    /// A face door on a TCP simulator, its harness not yet started.
    func door(_ device: SimulatedDevice, pollMillis: Int64 = 20, timeSync: Bool = false) throws -> (PollerHarness, TCPServerBox) {
        let server = try TCPServerBox([device])
        let harness = try PollerHarness(endpoint: .tcp(host: "127.0.0.1", port: Int(server.server.port)), units: [device.unit],
                                        pollMillis: pollMillis, timeSync: timeSync)
        return (harness, server)
    }

    /// Finding 1: one refused ack (exception 03 from a device that did not restart) stopped the device for good:
    /// never acked again, polled in a tight loop, and its log overwrote the unread events.
    @Test func refusedAcksNeverStopAcking() async throws {
        let device = SimulatedDevice(kind: .faceDoor, unit: 1, capacity: 20)
        for _ in 0..<5 { device.record(code: 16, point: 1) }
        device.refuseAcks(3)
        let (harness, server) = try door(device)
        harness.start()
        try await waitUntil("the device acknowledged up to 5 after 3 refused acks (ack \(device.logStatus.ack))") {
            device.logStatus.ack == 5
        }
        // Three more rounds of 10 through a log of 20: any stall would overwrite unread events.
        for round in 1...3 {
            for _ in 0..<10 { device.record(code: 17, point: 1) }
            if round == 2 { device.refuseAcks(1) }
            try await waitUntil("round \(round) acknowledged (ack \(device.logStatus.ack))") { device.logStatus.ack == UInt32(5 + 10 * round) }
        }
        harness.stop()
        #expect(harness.distinctSeqs() == Array(1...35))
        #expect(harness.count(.eventsLost) == 0)
        #expect(!device.logStatus.overwritten)
        #expect(harness.log.count(containing: "device refused ack_seq") == 4)
        withExtendedLifetime(server) {}
    }

    /// Issue 10: a controller swapped for one with another serial that carries on with the same boot id and upward
    /// seqs, with no outage, restart or gap to notice. The periodic serial read (here every 300 ms instead of 5 min)
    /// finds it; records read after that carry the new serial, so ids never repeat across controllers.
    @Test func aControllerSwappedWithoutARestartIsFoundByThePeriodicSerialRead() async throws {
        let device = SimulatedDevice(kind: .faceDoor, unit: 1, serial: "FD-OLD-1")
        for _ in 0..<3 { device.record(code: 16, point: 1) }
        let server = try TCPServerBox([device])
        let harness = try PollerHarness(endpoint: .tcp(host: "127.0.0.1", port: Int(server.server.port)), units: [1],
                                        serialCheckMillis: 300)
        harness.start()
        try await waitUntil("1-3 acknowledged") { device.logStatus.ack == 3 }
        device.replaceController(serial: "FD-NEW-2")
        try await waitUntil("the new serial noticed") { harness.log.count(containing: "device serial changed") == 1 }
        for _ in 0..<3 { device.record(code: 17, point: 1) }
        try await waitUntil("4-6 acknowledged") { device.logStatus.ack == 6 }
        // Later periodic reads of the unchanged serial say nothing (40 requests at a 20 ms poll span two checks at least).
        let requests = server.server.statistics.requests
        try await waitUntil("40 more requests") { server.server.statistics.requests > requests + 40 }
        harness.stop()
        let records = harness.all.filter { $0.origin == .device }
        #expect(records.map(\.seq) == [1, 2, 3, 4, 5, 6])
        #expect(records.allSatisfy { $0.boot == 1 })
        #expect(records.prefix(3).allSatisfy { $0.serial.description == "FD-OLD-1" })
        #expect(records.suffix(3).allSatisfy { $0.serial.description == "FD-NEW-2" })
        #expect(harness.log.count(containing: "device serial changed from 'FD-OLD-1' to 'FD-NEW-2'") == 1)
        #expect(harness.log.count(containing: "device serial changed") == 1)
        withExtendedLifetime(server) {}
    }

    /// Issue 19 item 1: a device that frees records once acknowledged shows tail_seq = head_seq + 1 with an empty log;
    /// taken for an implausible header it made every access event a device.offline / device.online pair.
    @Test func aDeviceThatFreesAcknowledgedRecordsStaysOnline() async throws {
        let device = SimulatedDevice(kind: .faceDoor, unit: 1)
        device.freesAcknowledged = true
        let (harness, server) = try door(device)
        harness.start()
        for event in 1...6 {
            device.record(code: 1, point: 1, direction: 1, value: 950, subject: "P-\(event)")
            try await waitUntil("event \(event) acknowledged") { device.logStatus.ack == UInt32(event) }
            #expect(device.logStatus.tail == UInt32(event) + 1, "the simulated log holds nothing once acknowledged")
            let requests = server.server.statistics.requests
            try await waitUntil("5 polls of the empty log") { server.server.statistics.requests >= requests + 5 }
        }
        harness.stop()
        #expect(harness.distinctSeqs() == Array(1...6))
        #expect(harness.count(.deviceOffline) == 0)
        #expect(harness.count(.eventsLost) == 0)
        #expect(harness.links[0].status == .online)
        #expect(harness.log.count(containing: "tail_seq") == 0)
        withExtendedLifetime(server) {}
    }

    /// Finding 5: a window that skips a record the device still holds (tail_seq ≤ last + 1, no overwrite flag)
    /// was taken for loss, and the gateway acked over the skipped record.
    @Test func aWindowGapIsReadAgainNotReportedLost() async throws {
        let device = SimulatedDevice(kind: .faceDoor, unit: 1)
        for _ in 0..<5 { device.record(code: 16, point: 1) }
        var faults = DeviceFaults()
        faults.windowGap = true
        device.faults = faults
        let (harness, server) = try door(device)
        harness.start()
        try await waitUntil("several windows read") { server.server.statistics.requests >= 6 }
        #expect(device.logStatus.ack == 0, "nothing acknowledged over the record the window skipped")
        #expect(harness.count(.eventsLost) == 0)
        #expect(harness.seqs().isEmpty)
        device.faults = .none
        try await waitUntil("all 5 acknowledged once the window is whole") { device.logStatus.ack == 5 }
        harness.stop()
        #expect(harness.distinctSeqs() == Array(1...5))
        #expect(harness.count(.eventsLost) == 0)
        #expect(harness.log.count(containing: "tail_seq 1 shows the device still holds it") >= 1)
        withExtendedLifetime(server) {}
    }

    /// Finding 2: a read-only clock with `time_sync: true`, or a failing state block, kept the log from being
    /// read at all, reported the answering device offline, and sent a clock_skew on every retry.
    @Test func refusedClockAndFailingStateBlockNeverBlockTheLog() async throws {
        var faults = DeviceFaults()
        faults.readOnlyClock = true
        faults.failingStateBlock = true
        let device = SimulatedDevice(kind: .faceDoor, unit: 1, faults: faults)
        device.setClock(offsetSeconds: 120, synchronised: false)
        for _ in 0..<5 { device.record(code: 16, point: 1) }
        let (harness, server) = try door(device, timeSync: true)
        harness.start()
        try await waitUntil("the 5 events acknowledged (ack \(device.logStatus.ack))") { device.logStatus.ack == 5 }
        let requests = server.server.statistics.requests
        try await waitUntil("20 more polls") { server.server.statistics.requests >= requests + 20 }
        device.record(code: 17, point: 1)
        try await waitUntil("a later event acknowledged") { device.logStatus.ack == 6 }
        harness.stop()
        #expect(harness.distinctSeqs() == Array(1...6))
        #expect(harness.links[0].status == .online)
        #expect(harness.count(.deviceOffline) == 0)
        #expect(harness.count(.clockSkew) == 1, "the skew is reported once per clock check, not on every poll")
        #expect(harness.log.count(containing: "device refused setting its clock") == 1)
        #expect(harness.log.lines.filter { $0.contains("state block failed") && $0.contains("exception 04") }.count == 1,
                "logged once while it keeps failing the same way")
        withExtendedLifetime(server) {}
    }

    /// Issue 11: a box without a real-time clock boots with a stale clock; while the kernel says the host clock is
    /// unsynchronised no device clock is written, the skew is still reported, and the reason is logged once.
    @Test func unsynchronisedHostClockIsNeverWrittenIntoDevices() async throws {
        let devices = [SimulatedDevice(kind: .faceDoor, unit: 1), SimulatedDevice(kind: .faceDoor, unit: 2)]
        for device in devices { device.setClock(offsetSeconds: 120, synchronised: false) }
        let server = try TCPServerBox(devices)
        let harness = try PollerHarness(endpoint: .tcp(host: "127.0.0.1", port: Int(server.server.port)), units: [1, 2],
                                        timeSync: true, hostClock: .unsynchronised)
        harness.start()
        try await waitUntil("both skews reported") { harness.count(.clockSkew, slot: 0) == 1 && harness.count(.clockSkew, slot: 1) == 1 }
        let requests = server.server.statistics.requests
        try await waitUntil("20 more polls") { server.server.statistics.requests >= requests + 20 }
        harness.stop()
        for device in devices {
            let words = try device.readRegisters(address: 12, count: 2)
            let offset = Int64(UInt32(words[0]) << 16 | UInt32(words[1])) - Int64(Date().timeIntervalSince1970)
            #expect(abs(offset - 120) <= 2, "unit \(device.unit)'s clock left alone")
        }
        #expect(harness.log.count(containing: "host clock is not synchronised (adjtimex: STA_UNSYNC)") == 1)
        #expect(harness.log.count(containing: "setting it") == 0)
        withExtendedLifetime(server) {}
    }

    /// Finding 8: a header no device can hold (window_count 9 of a 3-record window) made a tight poll loop with no
    /// interval, backoff or offline. It is a failed poll: offline after 3, then backed off.
    @Test func garbageHeaderIsAFailedPollWithBackoffAndOffline() async throws {
        var faults = DeviceFaults()
        faults.garbledWindowCount = 9
        let device = SimulatedDevice(kind: .faceDoor, unit: 1, faults: faults)
        for _ in 0..<3 { device.record(code: 16, point: 1) }
        let (harness, server) = try door(device)
        harness.start()
        try await waitUntil("the device reported offline") { harness.count(.deviceOffline) == 1 }
        let before = server.server.statistics.requests
        try await Task.sleep(for: .seconds(1))
        let during = server.server.statistics.requests - before
        #expect(during < 10, "backed off while offline: \(during) requests in 1 s")
        #expect(harness.seqs().isEmpty)
        #expect(harness.log.count(containing: "window_count 9 exceeds the 3 records of the window") >= 1)
        device.faults = .none
        try await waitUntil("back online and drained", timeout: .seconds(40)) { device.logStatus.ack == 3 }
        harness.stop()
        #expect(harness.distinctSeqs() == [1, 2, 3])
        #expect(harness.count(.deviceOnline) == 1)
    }

    /// Finding 8: a boot_id register that reads differently every time is no restart: no events_lost flood, no
    /// events under a wrong boot, and the log drains once it reads steadily again.
    @Test func flappingBootIDGivesNoFalseLossOrWrongIDs() async throws {
        let device = SimulatedDevice(kind: .faceDoor, unit: 1, bootID: 4)
        for _ in 0..<3 { device.record(code: 16, point: 1) }
        let (harness, server) = try door(device)
        harness.start()
        try await waitUntil("the first 3 acknowledged") { device.logStatus.ack == 3 }
        var faults = DeviceFaults()
        faults.flappingBootID = true
        device.faults = faults
        for _ in 0..<3 { device.record(code: 17, point: 1) }
        let requests = server.server.statistics.requests
        try await waitUntil("20 reads of the flapping header") { server.server.statistics.requests >= requests + 20 }
        device.faults = .none
        try await waitUntil("all 6 acknowledged") { device.logStatus.ack == 6 }
        harness.stop()
        #expect(harness.count(.eventsLost) == 0)
        #expect(Set(harness.all.filter { $0.origin == .device }.map(\.boot)) == [4])
        #expect(harness.distinctSeqs() == Array(1...6))
        // Issue 19 item 3: a notice on every poll, each written in full; rate-limited per device like the other
        // notices (the first of a run, then one summary a minute).
        let notices = harness.log.kinds(containing: "device shows boot_id")
        #expect(notices.count >= 10)
        #expect(notices.allSatisfy { $0.flatMap(LogKind.named)?.rateLimited == true }, "\(notices)")
    }
}

extension DeviceFaultPollingTests {
    /// Finding 9 on RS-485: a noisy unit (trailing bytes, garbled CRCs, dropped replies) never makes its healthy
    /// neighbour fail, and the line is in step again as soon as the faults stop.
    @Test func rtuNoiseOfOneUnitIsNeverBlamedOnAnotherAndTheLineRecovers() async throws {
        var faults = DeviceFaults(noReplyProbability: 0.15, corruptCRCProbability: 0.15)
        faults.trailingBytes = 5
        let noisy = SimulatedDevice(kind: .faceDoor, unit: 1, faults: faults, seed: 7)
        let healthy = SimulatedDevice(kind: .faceDoor, unit: 2)
        for device in [noisy, healthy] { for _ in 0..<10 { device.record(code: 16, point: 1) } }
        let pair = try await SerialPair.start()
        defer { pair.stop() }
        let server = ModbusRTUServer(path: pair.deviceEnd, settings: SerialLineSettings(baud: 9600), devices: [noisy, healthy])
        try server.start()
        defer { server.stop() }
        // A generous timeout: on a loaded machine a late answer is a timeout, which this test does not judge;
        // what it judges is that no framing error (bad CRC, malformed, wrong unit) is ever blamed on the wrong unit.
        let harness = try PollerHarness(endpoint: .rtu(SerialLine(device: pair.masterEnd, baud: 9600)), units: [1, 2],
                                        pollMillis: 20, timeoutMillis: 500)
        func framingErrors(of device: String, from first: Int = 0) -> [String] {
            harness.log.lines.dropFirst(first).filter { line in
                line.contains("\(device) on ") && ["bad CRC", "malformed", "another unit", "reply from unit", "reply of"].contains { line.contains($0) }
            }
        }
        harness.start()
        try await waitUntil("the healthy unit drained beside the noisy one", timeout: .seconds(30)) { healthy.logStatus.ack == 10 }
        try await waitUntil("the noisy unit failed some requests") { harness.links[0].errors >= 3 }
        #expect(framingErrors(of: "dev-2").isEmpty, "the healthy unit never paid for its neighbour's noise")
        noisy.faults = .none
        try await waitUntil("the noisy unit drained once quiet", timeout: .seconds(40)) { noisy.logStatus.ack == 10 }
        let quiet = harness.log.lines.count
        for device in [noisy, healthy] { for _ in 0..<5 { device.record(code: 17, point: 1) } }
        try await waitUntil("both drained again", timeout: .seconds(30)) { noisy.logStatus.ack == 15 && healthy.logStatus.ack == 15 }
        harness.stop()
        #expect(framingErrors(of: "dev-1", from: quiet).isEmpty && framingErrors(of: "dev-2").isEmpty,
                "no framing error once the faults stopped: \(framingErrors(of: "dev-1", from: quiet))")
        #expect(harness.distinctSeqs(slot: 0) == Array(1...15) && harness.distinctSeqs(slot: 1) == Array(1...15))
    }
}

/// A TCP simulator on a free loopback port, stopped when released.
final class TCPServerBox: @unchecked Sendable {
    // @unchecked: the server is itself thread-safe.
    let server: ModbusTCPServer
    init(_ devices: [SimulatedDevice]) throws {
        server = ModbusTCPServer(host: "127.0.0.1", port: 0, devices: devices)
        try server.start()
    }
    deinit { server.stop() }
}
