import Foundation
import Gateway
import Simulators
import Synchronization
import Testing
import TestSupport

@Suite("end to end: SIGHUP reloads the configuration", .serialized)
struct ReloadEndToEndTests {
    static func bus(_ id: String, _ simulator: TCPSimulator) -> String {
        "  - id: \(id)\n    tcp: { host: 127.0.0.1, port: \(simulator.server.port) }\n    timeout: 300ms"
    }

    static func device(_ id: String, profile: String, bus: String, unit: Int, poll: String) -> String {
        "  - { id: \(id), profile: \(profile), bus: \(bus), unit: \(unit), poll: \(poll) }"
    }

    @Test func changedBusRestartsWhileTheUntouchedBusDeliversWithoutAGap() async throws {
        let harness = try GatewayHarness()
        let busA = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let busB = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1), SimulatedDevice(kind: .plateReader, unit: 2)])
        let (doorA, doorB, gateB) = (busA.devices[0], busB.devices[0], busB.devices[1])
        let buses = [Self.bus("a", busA), Self.bus("b", busB)].joined(separator: "\n")
        let doorAYAML = Self.device("door-a", profile: "face-door", bus: "a", unit: 1, poll: "50ms")
        try harness.configure(buses: buses, devices: [
            doorAYAML, Self.device("door-b", profile: "face-door", bus: "b", unit: 1, poll: "100ms"),
        ].joined(separator: "\n"))
        let subscriber = try await Subscriber.subscribed(to: "accessgw/#", on: harness.broker)
        let notify = try NotifySocket(directory: harness.directory)
        try await harness.start(environment: ["NOTIFY_SOCKET": notify.path])
        doorA.record(code: 33, value: 0)
        doorB.record(code: 33, value: 0)
        _ = try await subscriber.waitForEvents("an event from each bus") { events in
            Set(events.filter { $0.seq != nil }.map(\.device)) == ["door-a", "door-b"]
        }

        // door-a records an event every 20ms from before the reload until after it.
        let keepRecording = Atomic(true)
        let recorder = Task {
            var recorded: UInt32 = 1
            while keepRecording.load(ordering: .relaxed) {
                doorA.record(code: 16, point: 1, value: recorded)
                recorded += 1
                try await Task.sleep(for: .milliseconds(20))
            }
            return recorded
        }
        try await waitUntil("door-a to be acknowledging the stream", timeout: .seconds(30)) { doorA.logStatus.ack >= 10 }
        try harness.configure(buses: buses, devices: [
            doorAYAML, Self.device("door-b", profile: "face-door", bus: "b", unit: 1, poll: "40ms"),
            Self.device("gate-b", profile: "plate-reader", bus: "b", unit: 2, poll: "40ms"),
        ].joined(separator: "\n"))
        let process = try #require(harness.gateway)
        kill(process.process.processIdentifier, SIGHUP)
        try await waitUntil("the reloaded: line (log: \(harness.log))", timeout: .seconds(30)) { harness.log.contains("reloaded:") }
        doorB.record(code: 33, value: 1)
        gateB.record(code: 1, point: 1, direction: 1, value: 962, extra: 1 << 16 | 5, subject: "云AD12345")
        try await waitUntil("door-a to be acknowledged past the reload", timeout: .seconds(30)) { doorA.logStatus.ack >= doorA.logStatus.head - 1 && doorA.logStatus.ack > 40 }
        keepRecording.store(false, ordering: .relaxed)
        let lastSeq = try await recorder.value  // seqs 2...lastSeq are the stream (seq 1 was the first event)
        try await waitUntil("every door-a event acknowledged", timeout: .seconds(30)) { doorA.logStatus.ack == lastSeq }
        let events = try await subscriber.waitForEvents("the whole door-a stream and bus b's new events") { events in
            let doorASeqs = Set(events.filter { $0.device == "door-a" }.compactMap(\.seq))
            return doorASeqs.count == Int(lastSeq) && events.contains { $0.device == "gate-b" && $0.seq != nil }
                && events.contains { $0.device == "door-b" && $0.seq == 2 }
        }

        let doorAEvents = events.filter { $0.device == "door-a" }
        #expect(doorAEvents.compactMap(\.seq).sorted() == Array(1...Int(lastSeq)), "door-a lost or repeated events")
        #expect(doorAEvents.filter { $0.type == "device.offline" }.isEmpty)
        #expect(doorAEvents.filter { $0.type == "device.online" }.count == 1, "door-a went online again: its poller restarted")
        let plate = try #require(events.first { $0.device == "gate-b" && $0.seq != nil })
        #expect(plate.data["plate"] as? String == "云AD12345")
        let log = harness.log
        #expect(log.contains("reloaded: restarted buses b; added devices gate-b; removed devices none; changed devices door-b; unchanged 1"))
        #expect(!log.contains(#"msg="stopped polling" bus=a"#), "bus a's poller was stopped")
        #expect(log.contains(#"msg="stopped polling" bus=b"#))
        #expect(!log.contains("take effect only after a restart"))
        // systemd hears RELOADING=1 and then READY=1 again.
        let kinds = notify.messages.compactMap { $0.split(separator: "\n").first.map(String.init) }.filter { $0 == "READY=1" || $0 == "RELOADING=1" }
        #expect(kinds == ["READY=1", "RELOADING=1", "READY=1"])
        await #expect(harness.stop() == 0)
    }

    @Test func invalidConfigurationIsLoggedAndTheGatewayKeepsRunning() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let door = Self.device("door-3e", profile: "face-door", bus: "lan", unit: 1, poll: "50ms")
        try harness.configure(buses: simulator.busYAML, devices: door)
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: harness.broker)
        try await harness.start()
        try harness.configure(buses: simulator.busYAML, devices: [
            door, Self.device("door-4", profile: "face-door", bus: "lan", unit: 1, poll: "5ms"),
        ].joined(separator: "\n"))
        let check = try await harness.accessgw(["check", "--config", harness.configPath])
        let problems = check.output.replacingOccurrences(of: "accessgw: ", with: "").split(separator: "\n").map(String.init)
        #expect(problems.count == 2, "expected two problems, check printed: \(check.output)")
        let process = try #require(harness.gateway)
        kill(process.process.processIdentifier, SIGHUP)
        try await waitUntil("the refusal in the log (log: \(harness.log))", timeout: .seconds(30)) { harness.log.contains("reload refused") }
        for problem in problems {
            #expect(harness.log.contains("level=error msg=\(Logfmt.value(problem))"), "not logged as check prints it: \(problem)")
        }
        #expect(process.isRunning)
        #expect(!harness.log.contains("reloaded:"))
        simulator.devices[0].record(code: 33, value: 7)
        _ = try await subscriber.waitForEvents("an event after the refused reload") { $0.contains { $0.device == "door-3e" && $0.seq == 1 } }

        // A valid file that changes only the mqtt section: nothing restarts, and the operator is told to restart.
        try harness.configure(buses: simulator.busYAML, devices: door, mqttExtra: "  max_inflight: 10")
        kill(process.process.processIdentifier, SIGHUP)
        try await waitUntil("the reloaded: line (log: \(harness.log))", timeout: .seconds(30)) { harness.log.contains("reloaded:") }
        #expect(harness.log.contains(#"level=warning msg="changes to mqtt take effect only after a restart (systemctl restart accessgw); applied the buses and devices""#))
        #expect(harness.log.contains("reloaded: restarted buses none; added devices none; removed devices none; unchanged 1"))
        await #expect(harness.stop() == 0)
    }
}
