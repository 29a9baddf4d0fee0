import DeviceProfiles
import Foundation
import Simulators
import Testing
import TestSupport

/// SPEC 3.5 end to end: the lift monitor, turnstile and card reader served from their profiles, polled by a real
/// gateway over TCP and over an RTU pseudo-terminal, their derived events published through journal and broker.
@Suite("end to end: devices without an event log (map 2)", .serialized)
struct MapDevicesEndToEndTests {
    static func profile(_ name: String) throws -> DeviceProfile {
        try DeviceProfile.load(path: GatewayHarness.repository.appendingPathComponent("Devices/\(name).yaml").path)
    }

    static func devices() throws -> [SimulatedDevice] {
        let lift = SimulatedDevice(profile: try profile("lift-monitor"), unit: 1)
        let turnstile = SimulatedDevice(profile: try profile("turnstile"), unit: 2)
        let reader = SimulatedDevice(profile: try profile("card-reader"), unit: 3)
        turnstile.updateMap { $0.set("entries", 0xFFFF_FFFE) }   // wraps at 2³² on the next passages
        reader.updateMap { $0.set("counter", 65534) }              // wraps at 65536 during the burst
        return [lift, turnstile, reader]
    }

    static func devicesYAML(bus: String, poll: String) -> String {
        [("lift", "lift-monitor"), ("gate", "turnstile"), ("reader", "card-reader")].enumerated().map { index, entry in """
          - id: \(entry.0)
            profile: \(entry.1)
            bus: \(bus)
            unit: \(index + 1)
            poll: \(poll)
        """ }.joined(separator: "\n")
    }

    /// Sets values, then waits until the gateway published what they mean before the next step.
    static func step(_ subscriber: Subscriber, _ what: String, _ change: () -> Void,
                     until done: @escaping ([ReceivedEvent]) -> Bool) async throws -> [ReceivedEvent] {
        change()
        return try await subscriber.waitForEvents(what, timeout: .seconds(20), done)
    }

    static func everyRuleFires(_ harness: GatewayHarness, _ devices: [SimulatedDevice]) async throws {
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: harness.broker)
        let states = try await Subscriber.subscribed(to: "accessgw/+/lift/state", on: harness.broker)
        try await harness.start()
        let (lift, turnstile, reader) = (devices[0], devices[1], devices[2])
        _ = try await subscriber.waitForEvents("three devices online") { events in
            Set(events.filter { $0.type == "device.online" }.map(\.device)) == ["lift", "gate", "reader"]
        }
        try await Task.sleep(for: .milliseconds(300))  // a poll after online: the baselines are set
        var events = try await step(subscriber, "lift faults", {
            lift.updateMap { map in
                map.set("floor", -2)
                map.set("fault_code", 21)
                map.set("trapped", 1)
                map.set("overload", 1)
            }
        }, until: { $0.filter { $0.device == "lift" }.count >= 4 })
        let liftEvents = events.filter { $0.device == "lift" && $0.type != "device.online" }
        #expect(Set(liftEvents.map(\.type)) == ["elevator.fault", "elevator.overload"])
        #expect(liftEvents.contains { $0.data["fault"] as? String == "passenger_trapped" && $0.data["floor"] as? Int == -2 && $0.data["alarm"] as? Bool == true })
        #expect(liftEvents.contains { $0.data["fault_code"] as? Int == 21 && $0.data["floor"] as? Int == -2 })
        #expect(liftEvents.allSatisfy { $0.id.contains("/g/gw-test/") }, "derived events carry gateway-made ids")

        events = try await step(subscriber, "fault cleared, fire service", {
            lift.updateMap { map in
                map.set("fault_code", 0)
                map.set("fire_service", 1)
            }
        }, until: { $0.contains { $0.type == "elevator.mode_changed" } && $0.contains { $0.type == "elevator.fault_cleared" } })
        #expect(events.first { $0.type == "elevator.fault_cleared" }?.data["fault_code"] as? Int == 21)
        #expect(events.first { $0.type == "elevator.mode_changed" }?.data["mode"] as? String == "fire_service")

        events = try await step(subscriber, "passages across the 2³² wrap", {
            turnstile.updateMap { map in
                map.set("entries", 3)   // 0xFFFFFFFE + 5
                map.set("alarms", 0b010)
            }
        }, until: { $0.contains { $0.type == "passage.counted" } && $0.contains { $0.type == "door.forced" } })
        let passage = try #require(events.first { $0.type == "passage.counted" })
        #expect(passage.data["count"] as? Int == 5 && passage.data["direction"] as? String == "in")

        events = try await step(subscriber, "turnstile restarted", { turnstile.updateMap { $0.set("entries", 1) } },
                                until: { $0.contains { $0.type == "device.counter_reset" } })
        #expect(events.filter { $0.type == "passage.counted" }.count == 1, "a reset is no passage")

        events = try await step(subscriber, "one swipe", {
            reader.updateMap { map in
                map.set("counter", 65535)
                map.set("result", 0)
                map.set("card", Int64(bitPattern: 0xF123_4567_89AB_CDEF))
                map.set("door", 2)
                map.image[6] = 0x2611
                map.image[7] = 0x2716   // 2026-11-27 16:01:02 at UTC+8
                map.image[8] = 0x0102
            }
        }, until: { $0.contains { $0.type == "access.granted" } })
        let granted = try #require(events.first { $0.type == "access.granted" })
        #expect(granted.data["card"] as? String == "17375808098319191535" && granted.data["door"] as? Int == 2
                && granted.data["method"] as? String == "card")
        let payloads = subscriber.messages.filter { $0.topic.hasSuffix("/event/access.granted") }.map(\.payload)
        #expect(payloads.first?.contains("\"time\":\"2026-11-27T08:01:02.000Z\"") == true, "\(payloads)")

        events = try await step(subscriber, "a burst of 7 swipes between two polls", {
            reader.updateMap { map in
                map.set("counter", 6)   // 65535 + 7, wrapped at 65536
                map.set("result", 1)
            }
        }, until: { $0.contains { $0.type == "gateway.events_lost" } })
        let denied = events.filter { $0.type == "access.denied" }
        #expect(denied.count == 1 && denied.first?.data["reason"] as? String == "unknown_card")
        let lost = try #require(events.first { $0.type == "gateway.events_lost" }?.data["lost"] as? [String: Any])
        #expect(lost["count"] as? Int == 6 && lost["from_seq"] as? Int == 0 && lost["to_seq"] as? Int == 5)

        let state = try await states.waitForMessages("lift state with floor -2") { messages in
            messages.contains { $0.retained || $0.payload.contains("\"floor\":-2") }
        }
        #expect(state.last?.payload.contains("\"mode\":\"fire_service\"") == true, "\(state)")
        await #expect(harness.stop() == 0)
    }

    @Test func everyRuleFiresOverTCP() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator(try Self.devices())
        try harness.configure(buses: simulator.busYAML, devices: Self.devicesYAML(bus: "lan", poll: "100ms"))
        try await Self.everyRuleFires(harness, simulator.devices)
    }

    /// The lift monitor simulated as the documentation says (issue 19, item 20: it could not be): the devices of
    /// `Examples/simulators-map2.yaml` with their `actions`, ten times faster, on the bus its comment configures.
    @Test func theExampleSimfileDrivesEveryLiftEventTurnstileAndReader() async throws {
        var yaml = try String(contentsOf: GatewayHarness.repository.appendingPathComponent("Examples/simulators-map2.yaml"),
                              encoding: .utf8)
        let port = freeLoopbackPort()
        yaml = yaml.replacingOccurrences(of: "port: 15031", with: "port: \(port)")
        for match in yaml.matches(of: /(every|for): (\d+)s\b/).reversed() {
            yaml.replaceSubrange(match.range, with: "\(match.output.1): \(Int(match.output.2)! * 100)ms")
        }
        let host = SimulatorHost(config: try SimulatorConfig.parse(yaml: yaml, file: "simulators-map2.yaml"))
        try host.start()
        defer { host.stop() }
        let harness = try GatewayHarness()
        try harness.configure(buses: "  - { id: sim, tcp: { host: 127.0.0.1, port: \(port) }, timeout: 300ms }", devices: """
              - { id: lift-3a, profile: lift-monitor, bus: sim, unit: 1, poll: 50ms }
              - { id: turnstile-n, profile: turnstile, bus: sim, unit: 2, poll: 50ms }
              - { id: reader-3e, profile: card-reader, bus: sim, unit: 3, poll: 50ms }
            """)
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: harness.broker)
        try await harness.start()
        let expected: Set<String> = ["lift-3a elevator.fault fault_code", "lift-3a elevator.fault passenger_trapped",
                                     "lift-3a elevator.fault_cleared", "lift-3a elevator.overload", "lift-3a elevator.mode_changed",
                                     "turnstile-n passage.counted", "reader-3e access.granted"]
        func seen(_ events: [ReceivedEvent]) -> Set<String> {
            Set(events.map { event in
                let detail = event.type == "elevator.fault" ? (event.data["fault"] as? String == "passenger_trapped" ? " passenger_trapped" : " fault_code") : ""
                return "\(event.device) \(event.type)\(detail)"
            })
        }
        let events: [ReceivedEvent]
        do {
            events = try await subscriber.waitForEvents("every lift event, passages and swipes", timeout: .seconds(30)) {
                expected.isSubset(of: seen($0))
            }
        } catch {
            Issue.record("missing: \(expected.subtracting(seen(subscriber.events)).sorted()); seen \(seen(subscriber.events).sorted()); gateway log:\n\(harness.log)")
            throw error
        }
        #expect(events.contains { $0.type == "elevator.mode_changed" && $0.data["mode"] as? String == "fire_service" })
        await #expect(harness.stop() == 0)
    }

    @Test func everyRuleFiresOverAnRTUPseudoTerminal() async throws {
        let harness = try GatewayHarness()
        let line = try await RTUSimulator(try Self.devices(), baud: 38400)
        try harness.configure(buses: line.busYAML().replacingOccurrences(of: "baud: 9600", with: "baud: 38400"),
                              devices: Self.devicesYAML(bus: "b3-rs485", poll: "100ms"))
        try await Self.everyRuleFires(harness, line.devices)
    }

    @Test func probePrintsEveryRequestAndWhatEachRuleWouldEmit() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator(try Self.devices())
        simulator.devices[0].updateMap { map in
            map.set("fault_code", 21)
            map.set("floor", -2)
        }
        let (status, output) = try await harness.accessgw(["probe", "--profile", "lift-monitor", "--tcp", "127.0.0.1:\(simulator.server.port)", "--unit", "1"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("read      discrete_inputs 0+8: 00000000"), "\(output)")
        #expect(output.contains("read      input 0+5: 0xFFFE 0x21 0x0 0x0 0x0"), "\(output)")
        #expect(output.contains("change of fault_code 0 → nonzero, now 21; would emit elevator.fault (alarm)  fault_code 21, floor -2"), "\(output)")
        #expect(output.split(separator: "\n").filter { $0.hasPrefix("rule") }.count == 5)
    }

    /// Killed between polls and restarted: what changed meanwhile is reported once, nothing earlier again, and
    /// nothing that did not happen.
    @Test func aGatewayKilledBetweenPollsNeitherRepeatsNorInventsEvents() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator(try Self.devices())
        let (lift, turnstile, reader) = (simulator.devices[0], simulator.devices[1], simulator.devices[2])
        try harness.configure(buses: simulator.busYAML, devices: Self.devicesYAML(bus: "lan", poll: "100ms"))
        let subscriber = try await Subscriber.subscribed(to: "accessgw/+/+/event/#", on: harness.broker)
        try await harness.start()
        _ = try await subscriber.waitForEvents("three devices online") { events in
            Set(events.filter { $0.type == "device.online" }.map(\.device)) == ["lift", "gate", "reader"]
        }
        try await Task.sleep(for: .milliseconds(300))
        turnstile.updateMap { $0.set("entries", 0) }   // +2 across the wrap
        lift.updateMap { $0.set("trapped", 1) }
        _ = try await subscriber.waitForEvents("before the crash") { events in
            events.contains { $0.type == "passage.counted" } && events.contains { $0.type == "elevator.fault" }
        }
        try await Task.sleep(for: .milliseconds(300))
        harness.crash()

        // While the gateway is down: 3 more passages, one swipe, the trapped passenger freed (no rule: no event).
        turnstile.updateMap { $0.set("entries", 3) }
        reader.updateMap { map in
            map.set("counter", 65535)
            map.set("card", 42)
        }
        lift.updateMap { $0.set("trapped", 0) }
        try await harness.start()
        let after = try await subscriber.waitForEvents("after the restart") { events in
            events.filter { $0.type == "passage.counted" }.count >= 2 && events.contains { $0.type == "access.granted" }
        }
        try await Task.sleep(for: .seconds(1))  // ten more polls with nothing new
        let all = subscriber.events.filter { $0.device != "gw-test" && !$0.type.hasPrefix("device.o") }
        #expect(all.filter { $0.type == "passage.counted" }.compactMap { $0.data["count"] as? Int } == [2, 3])
        #expect(all.filter { $0.type == "elevator.fault" }.count == 1, "the fault before the crash was not repeated")
        #expect(all.filter { $0.type == "access.granted" }.count == 1 && after.contains { $0.data["card"] as? String == "42" })
        #expect(all.count == 4, "nothing invented: \(all.map(\.type))")
        #expect(Set(all.map(\.id)).count == all.count)
        await #expect(harness.stop() == 0)
    }
}

extension Subscriber {
    func waitForMessages(_ what: String, timeout: Duration = .seconds(20), _ done: @escaping ([Message]) -> Bool) async throws -> [Message] {
        try await eventually(what, timeout: timeout) {
            let received = messages
            return done(received) ? received : nil
        }
    }
}
