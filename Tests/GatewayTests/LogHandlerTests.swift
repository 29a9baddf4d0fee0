import AccessModel
import BusPolling
import DeviceProfiles
import EventRing
import Foundation
import Gateway
import Logging
import Simulators
import Synchronization
import Testing
import TestSupport

/// The one log handler (issue 11, logs): logfmt quoting, journald's native protocol over a real datagram socket,
/// and rate-limited transport errors from a real flaky device.
@Suite("log handler")
struct LogHandlerTests {
    @Test func logfmtQuotesValuesWithSpacesQuotesOrEquals() throws {
        #expect(Logfmt.value("door-3e") == "door-3e")
        #expect(Logfmt.value("30.0 seconds") == #""30.0 seconds""#)
        #expect(Logfmt.value("a=b") == #""a=b""#)
        #expect(Logfmt.value(#"say "hi""#) == #""say \"hi\"""#)
        #expect(Logfmt.value(#"C:\dir"#) == #""C:\\dir""#)
        #expect(Logfmt.value("") == #""""#)
        #expect(Logfmt.value("两行\n第二") == #""两行\\n第二""#, "a line break never splits a log line")
        #expect(Logfmt.value("门禁") == "门禁")

        let lines = Lines()
        var logger = Logger(label: "t") { _ in GatewayLogHandler(output: .init(destination: .logfmt(lines.append))) }
        logger.logLevel = .debug
        logger.info("mqtt settings", metadata: ["keepalive": "30.0 seconds", "device": "door-3e", "note": #"a "b"=c"#])
        let line = try #require(lines.all.first)
        #expect(line.hasPrefix("time=20"), "\(line)")
        #expect(line.hasSuffix("\n") && line.filter { $0 == "\n" }.count == 1)
        #expect(line.contains(#" level=info msg="mqtt settings" device=door-3e keepalive="30.0 seconds" note="a \"b\"=c""#), "\(line)")
        let pairs = try #require(LogfmtPairs(line))
        #expect(pairs["keepalive"] == "30.0 seconds")
        #expect(pairs["note"] == #"a "b"=c"#)
        #expect(pairs["msg"] == "mqtt settings")
    }

    @Test func underJournaldEntriesArriveAsNativeFieldsOnTheSocket() throws {
        let socket = try DatagramListener()
        let fallback = Lines()
        var logger = Logger(label: "t") { _ in
            GatewayLogHandler(output: .init(destination: .journal(socket: socket.path, fallback: fallback.append)))
        }
        logger.logLevel = .debug
        logger[metadataKey: "bus"] = "b3-rs485"
        logger.notice("door-3e on bus b3-rs485 unit 1: no reply", metadata: ["device": "door-3e", "modbus.unit": "1",
                                                                              LogKind.key: "\(LogKind.modbusTimeout)"])
        logger.error("two\nlines", metadata: ["keepalive": "30.0 seconds"])

        let first = try #require(socket.receive(), "no datagram arrived")
        let fields = try #require(JournalFields.parse(first), "not the native protocol: \(first)")
        #expect(fields["MESSAGE"] == "door-3e on bus b3-rs485 unit 1: no reply")
        #expect(fields["PRIORITY"] == "5")
        #expect(fields["DEVICE"] == "door-3e")
        #expect(fields["BUS"] == "b3-rs485")
        #expect(fields["MODBUS_UNIT"] == "1")
        #expect(fields["MESSAGE_ID"] == LogKind.modbusTimeout.messageID)
        #expect(fields["MESSAGE_ID"]?.count == 32)
        #expect(fields["SYSLOG_IDENTIFIER"] == "accessgw")
        #expect(fields["CODE_FILE"]?.hasSuffix("LogHandlerTests.swift") == true)

        let next = try #require(socket.receive(), "no second datagram arrived")
        let second = try #require(JournalFields.parse(next))
        #expect(second["PRIORITY"] == "3")
        #expect(second["MESSAGE"] == #"two\nlines"#, "a control character is escaped as in every other output")
        #expect(second["KEEPALIVE"] == "30.0 seconds")
        #expect(second["MESSAGE_ID"] == nil)
        #expect(fallback.all.isEmpty)

        // A value with a real line break goes as the binary form (FIELD\n, 64-bit length, bytes).
        let encoded = JournalFields.encodeForTest(["MESSAGE": "a\nb"])
        #expect(JournalFields.parse(encoded)?["MESSAGE"] == "a\nb")
    }

    /// U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR end a line for JavaScript, many log viewers and
    /// editors: a device subject or a broker message holding one must not forge a second log line (issue 19).
    @Test func lineAndParagraphSeparatorsAreEscapedInEveryLogOutput() throws {
        let forged = "door-3e\u{2028}time=2026-12-08T00:00:00Z level=info msg=\"door opened\"\u{2029}end"
        #expect(Logfmt.value(forged) == #""door-3e\\u{2028}time=2026-12-08T00:00:00Z level=info msg=\"door opened\"\\u{2029}end""#)

        let lines = Lines()
        let socket = try DatagramListener()
        var logfmt = Logger(label: "t") { _ in GatewayLogHandler(output: .init(destination: .logfmt(lines.append))) }
        logfmt.info("subject \(forged)", metadata: ["device": "\(forged)"])
        let line = try #require(lines.all.first)
        #expect(!line.unicodeScalars.contains { $0.value == 0x2028 || $0.value == 0x2029 }, "\(line)")
        #expect(LogfmtPairs(line)?["device"] == #"door-3e\u{2028}time=2026-12-08T00:00:00Z level=info msg="door opened"\u{2029}end"#)

        var journal = Logger(label: "t") { _ in
            GatewayLogHandler(output: .init(destination: .journal(socket: socket.path, fallback: lines.append)))
        }
        journal.info("subject \(forged)", metadata: ["device": "\(forged)"])
        let datagram = try #require(socket.receive(), "no datagram arrived")
        let fields = try #require(JournalFields.parse(datagram))
        #expect(fields["MESSAGE"] == #"subject door-3e\u{2028}time=2026-12-08T00:00:00Z level=info msg="door opened"\u{2029}end"#)
        #expect(fields["DEVICE"]?.unicodeScalars.contains { $0.value == 0x2028 || $0.value == 0x2029 } == false)
    }

    @Test func withoutTheJournalSocketLinesFallBackToPriorityPrefixes() throws {
        let directory = try makeTemporaryDirectory("accessgw-log")
        defer { try? FileManager.default.removeItem(at: directory) }
        let fallback = Lines()
        let logger = Logger(label: "t") { _ in
            GatewayLogHandler(output: .init(destination: .journal(socket: directory.appendingPathComponent("none").path,
                                                                  fallback: fallback.append)))
        }
        logger.warning("broker away", metadata: ["mqtt.broker": "127.0.0.1:1883"])
        #expect(fallback.all == [#"<4>level=warning msg="broker away" mqtt.broker=127.0.0.1:1883"# + "\n"])
    }

    @Test func journalStreamCountsOnlyWhenItNamesTheDescriptor() throws {
        let directory = try makeTemporaryDirectory("accessgw-log")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("stream").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var info = stat()
        #expect(fstat(fd, &info) == 0)
        #expect(GatewayLogHandler.journalStream("\(info.st_dev):\(info.st_ino)", names: fd))
        #expect(!GatewayLogHandler.journalStream("\(info.st_dev):\(info.st_ino + 1)", names: fd))
        #expect(!GatewayLogHandler.journalStream("8:12345", names: fd))
        #expect(!GatewayLogHandler.journalStream("garbage", names: fd))
    }

    /// A door that drops a quarter of its requests, polled for a few windows of 1 s: every timeout is accounted for
    /// (written, or counted in a summary), but only the first of a run is written in full. (The state block is read
    /// once, so its failure, logged once while it lasts, cannot hide a timeout from the count.)
    @Test func repeatedTimeoutsOfAFlakyDeviceAreSummarisedPerWindow() async throws {
        let device = SimulatedDevice(kind: .faceDoor, unit: 1, faults: DeviceFaults(noReplyProbability: 0.25), seed: 7)
        let server = ModbusTCPServer(host: "127.0.0.1", port: 0, devices: [device])
        try server.start()
        defer { server.stop() }
        let lines = Lines()
        let output = GatewayLogHandler.Output(destination: .logfmt(lines.append), rateWindow: .seconds(1))
        var logger = Logger(label: "poller") { _ in GatewayLogHandler(output: output) }
        logger.logLevel = .info
        let profile = try ProfileLibrary(directories: [GatewayHarness.repository.appendingPathComponent("Devices").path])
            .profile("face-door")
        let link = DeviceLink(id: "door-3e", bus: "lan")
        let ring = EventRing<EventRecord>(minimumCapacity: 64)
        let poller = try BusPoller(
            bus: BusConfiguration(id: "lan", endpoint: .tcp(host: "127.0.0.1", port: Int(server.port)), timeoutMillis: 40,
                                  turnaroundMillis: 0),
            devices: [DeviceConfiguration(id: "door-3e", slot: 0, unit: 1, profile: profile, pollMillis: 20,
                                          statePollMillis: 600_000, timeSync: false)],
            links: [link], ring: ring, journalBell: RingDoorbell(), board: DeviceStateBoard(deviceCount: 1), logger: logger,
            hostClock: { .synchronised })
        poller.start()
        try await waitUntil("30 timeouts (so far \(link.errors))", timeout: .seconds(60)) { link.errors >= 30 }
        poller.stop()
        var offline = 0
        _ = ring.drain(max: 64) { if $0.origin == .deviceOffline { offline += 1 } }

        let timeouts = { lines.all.compactMap(LogfmtPairs.init).filter { $0["log.kind"] == "modbus.timeout" } }
        // A line in full counts 1, a summary the repeats it counted.
        let accounted = { timeouts().reduce(0) { $0 + ($1["log.suppressed"].flatMap { Int($0) } ?? 1) } }
        // Failures while offline are not logged (the offline line says it); without an offline spell every one is.
        let expected = link.errors
        try await waitUntil("every timeout written or summarised (\(accounted()) of \(expected)): \(lines.all)", timeout: .seconds(10)) {
            offline == 0 ? accounted() == expected : accounted() <= expected && timeouts().contains { $0["log.suppressed"] != nil }
        }
        let summaries = timeouts().filter { $0["log.suppressed"] != nil }
        let full = timeouts().filter { $0["log.suppressed"] == nil }
        #expect(!summaries.isEmpty)
        #expect(full.count < expected / 2, "most timeouts are counted, not written: \(full.count) of \(expected)")
        for summary in summaries {
            let count = try #require(summary["log.suppressed"])
            #expect(summary["msg"]?.hasPrefix("\(count) more timeouts in the last ") == true, "\(summary)")
            #expect(summary["msg"]?.contains("; the last: door-3e on bus lan unit 1") == true, "\(summary)")
            #expect(summary["device"] == "door-3e" && summary["bus"] == "lan")
            #expect(summary["level"] == "notice")
        }
        #expect(timeouts().allSatisfy { $0["level"] == "notice" }, "a timeout is not a warning")
        #expect(!lines.all.contains { $0.contains("level=warning") }, "\(lines.all)")
    }

    /// A broker that refuses connections: an ERROR once, then summaries (warnings) until it connects.
    @Test func aRefusedBrokerIsOneErrorThenSummaries() throws {
        let lines = Lines()
        let output = GatewayLogHandler.Output(destination: .logfmt(lines.append), rateWindow: .seconds(60))
        var logger = Logger(label: "mqtt") { _ in GatewayLogHandler(output: output) }
        logger[metadataKey: "mqtt.broker"] = "127.0.0.1:1"
        for _ in 0..<5 {
            logger.error("broker 127.0.0.1:1 unreachable: connection refused", metadata: [LogKind.key: "\(LogKind.mqttUnreachable)"])
        }
        #expect(lines.all.count == 1)
        #expect(lines.all.first?.contains("level=error") == true)
        logger.info("connected to MQTT broker", metadata: [LogKind.key: "\(LogKind.mqttConnected)"])
        let pairs = lines.all.compactMap(LogfmtPairs.init)
        #expect(pairs.count == 3, "\(lines.all)")
        #expect(pairs[1]["level"] == "warning")
        #expect(pairs[1]["msg"]?.hasPrefix("4 more failed connection attempts in the last ") == true, "\(pairs[1])")
        #expect(pairs[2]["msg"] == "connected to MQTT broker")
        // After a connection the next refusal is an ERROR again.
        logger.error("broker 127.0.0.1:1 unreachable: connection refused", metadata: [LogKind.key: "\(LogKind.mqttUnreachable)"])
        #expect(lines.all.count == 4 && lines.all[3].contains("level=error"))
    }
}

/// Lines written by a handler, kept for the test.
final class Lines: Sendable {
    private let storage = Mutex<[String]>([])
    var all: [String] { storage.withLock { $0 } }
    var append: @Sendable (String) -> Void { { line in self.storage.withLock { $0.append(line) } } }
}

/// One logfmt line parsed (key=value, "quoted values" with \" and \\), or nil if it is not logfmt.
struct LogfmtPairs: CustomStringConvertible {
    var pairs: [String: String] = [:]
    subscript(key: String) -> String? { pairs[key] }
    var description: String { "\(pairs)" }

    init?(_ line: String) {
        var rest = Substring(line.hasSuffix("\n") ? String(line.dropLast()) : line)
        while !rest.isEmpty {
            guard let equals = rest.firstIndex(of: "=") else { return nil }
            let key = String(rest[..<equals])
            guard !key.isEmpty, !key.contains(" ") else { return nil }
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var closed = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if character == "\\" {
                        guard let next = rest.first else { return nil }
                        value.append(next)
                        rest = rest.dropFirst()
                    } else if character == "\"" {
                        closed = true
                        break
                    } else {
                        value.append(character)
                    }
                }
                guard closed else { return nil }
            } else {
                let end = rest.firstIndex(of: " ") ?? rest.endIndex
                value = String(rest[..<end])
                guard !value.contains("\""), !value.contains("=") else { return nil }
                rest = rest[end...]
            }
            pairs[key] = value
            guard rest.isEmpty || rest.first == " " else { return nil }
            rest = rest.drop { $0 == " " }
        }
    }
}

/// journald's native protocol, read back as journald reads it.
enum JournalFields {
    static func parse(_ bytes: [UInt8]) -> [String: String]? {
        var fields: [String: String] = [:]
        var index = 0
        while index < bytes.count {
            guard let end = bytes[index...].firstIndex(where: { $0 == 0x0A || $0 == UInt8(ascii: "=") }) else { return nil }
            let name = String(decoding: bytes[index..<end], as: UTF8.self)
            guard !name.isEmpty, name.allSatisfy({ $0.isUppercase || $0.isNumber || $0 == "_" }) else { return nil }
            if bytes[end] == UInt8(ascii: "=") {
                guard let newline = bytes[(end + 1)...].firstIndex(of: 0x0A) else { return nil }
                fields[name] = String(decoding: bytes[(end + 1)..<newline], as: UTF8.self)
                index = newline + 1
            } else {
                guard end + 9 <= bytes.count else { return nil }
                let length = bytes[(end + 1)..<(end + 9)].reversed().reduce(0) { $0 << 8 | Int($1) }
                let start = end + 9
                guard start + length < bytes.count, bytes[start + length] == 0x0A else { return nil }
                fields[name] = String(decoding: bytes[start..<(start + length)], as: UTF8.self)
                index = start + length + 1
            }
        }
        return fields
    }

    /// The binary form, written independently of the handler, to check that `parse` reads it.
    static func encodeForTest(_ fields: [String: String]) -> [UInt8] {
        var bytes: [UInt8] = []
        for (name, value) in fields {
            bytes += Array(name.utf8) + [0x0A]
            var length = UInt64(value.utf8.count).littleEndian
            withUnsafeBytes(of: &length) { bytes += $0 }
            bytes += Array(value.utf8) + [0x0A]
        }
        return bytes
    }
}

/// A bound Unix datagram socket in a temporary directory, as journald's is.
final class DatagramListener: @unchecked Sendable {
    // @unchecked: the descriptor is used by one test at a time.
    let directory: URL
    let path: String
    let fd: Int32

    init() throws {
        directory = try makeTemporaryDirectory("accessgw-journal")
        path = directory.appendingPathComponent("socket").path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(fd)
        try? FileManager.default.removeItem(at: directory)
    }

    /// The next datagram, or nil after 10 s without one.
    func receive() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? Array(buffer[0..<count]) : nil
    }
}

extension LogHandlerTests {
    /// Repeats counted when the process stops are summarised by `flush`, not lost with it.
    @Test func flushSummarisesWhatIsPendingAtExit() {
        let lines = Lines()
        let output = GatewayLogHandler.Output(destination: .logfmt(lines.append), rateWindow: .seconds(60))
        let logger = Logger(label: "poller") { _ in GatewayLogHandler(output: output) }
        for _ in 0..<4 {
            logger.notice("door-3e on bus lan unit 1: no reply within 200ms",
                          metadata: ["device": "door-3e", LogKind.key: "\(LogKind.modbusTimeout)"])
        }
        #expect(lines.all.count == 1)
        output.flush()
        let pairs = lines.all.compactMap(LogfmtPairs.init)
        #expect(pairs.count == 2, "\(lines.all)")
        #expect(pairs.last?["log.suppressed"] == "3")
        #expect(pairs.last?["msg"]?.hasPrefix("3 more timeouts in the last ") == true, "\(lines.all)")
        output.flush()
        #expect(lines.all.count == 2, "nothing is summarised twice")
    }
}
