import AccessModel
import DeviceProfiles
import Testing

@Suite("plate-reader and elevator records")
struct PlateAndElevatorDecodingTests {
    @Test func plateIsDecodedFromGB18030WithColourAndVehicleType() throws {
        let profile = try Fixtures.profile("plate-reader")
        var r = RecordBuilder(code: 1)
        r.subject = try TextEncoding.gb18030.encode("云A12345", length: 40)
        r.extra = 1 << 16 | 1  // car, blue
        r.value = 962; r.point = 1; r.direction = 1
        let event = Fixtures.decode(profile, r).event
        #expect(event.type == "access.granted")
        #expect(event.field("method") == .string("plate"))
        #expect(event.field("plate") == .string("云A12345"))
        #expect(event.field("colour") == .string("blue"))
        #expect(event.field("vehicle_type") == .string("car"))
        #expect(event.field("score") == .double(0.962))
        #expect(event.field("lane") == .int(1))
    }

    @Test func newEnergyPlateAndEveryColourName() throws {
        let profile = try Fixtures.profile("plate-reader")
        let colours = ["unknown", "blue", "yellow", "white", "black", "green", "yellow_green", "other"]
        for (code, name) in colours.enumerated() {
            var r = RecordBuilder(code: 2)
            r.subject = try TextEncoding.gb18030.encode("粤BD12345", length: 40)
            r.extra = UInt32(code)
            let event = Fixtures.decode(profile, r).event
            #expect(event.field("colour") == .string(name))
            #expect(event.field("plate") == .string("粤BD12345"))
            #expect(event.field("reason") == .string("not_registered"))
        }
    }

    @Test(arguments: [
        (UInt16(3), "access.granted", false), (4, "vehicle.unrecognised", false), (5, "access.denied", false),
        (16, "barrier.opened", false), (17, "barrier.closed", false), (18, "barrier.fault", true),
        (19, "barrier.obstructed", true), (8, "command.executed", false), (32, "device.tamper", true),
        (33, "device.restarted", false), (34, "device.log_nearly_full", true), (99, "device.unknown_event", false),
    ])
    func plateCodesHaveTheirTypes(code: UInt16, type: String, alarm: Bool) throws {
        let event = Fixtures.decode(try Fixtures.profile("plate-reader"), RecordBuilder(code: code)).event
        #expect(event.type == type)
        #expect(event.alarm == alarm)
    }

    @Test func visitorPlateIsMarked() throws {
        let event = Fixtures.decode(try Fixtures.profile("plate-reader"), RecordBuilder(code: 3)).event
        #expect(event.field("visitor") == .bool(true))
    }

    @Test func invalidGB18030PlateIsReportedNotDropped() throws {
        var r = RecordBuilder(code: 1)
        r.subject = [0xD4, 0xC6, 0x81, 0x20]  // 云 then a lead byte with an invalid trail byte
        let (event, problems) = Fixtures.decode(try Fixtures.profile("plate-reader"), r)
        #expect(event.type == "access.granted")
        #expect(problems.count == 1)
        #expect(event.field("subject_hex") == .string("d4c68120"))
    }

    @Test func plateConvertersAreReusedAcrossFailuresAndThreads() async throws {
        // The GB18030 converter is kept open between records: a failed conversion must not leave it mid-sequence,
        // and two threads must never share one.
        let profile = try Fixtures.profile("plate-reader")
        var bad = RecordBuilder(code: 1)
        bad.subject = [0xD4, 0xC6, 0x81]  // 云 then a lead byte cut short
        var good = RecordBuilder(code: 1)
        good.subject = try TextEncoding.gb18030.encode("粤BD12345", length: 40)
        let (badRecord, goodRecord) = (bad, good)
        let wrong = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    var wrong = 0
                    for _ in 0..<200 {
                        let failed = Fixtures.decode(profile, badRecord)
                        if failed.problems.count != 1 || failed.event.field("subject_hex") != .string("d4c681") { wrong += 1 }
                        if Fixtures.decode(profile, goodRecord).event.field("plate") != .string("粤BD12345") { wrong += 1 }
                    }
                    return wrong
                }
            }
            return await group.reduce(0, +)
        }
        #expect(wrong == 0)
    }

    @Test func elevatorGrantListsAuthorisedFloorsAndMethod() throws {
        var r = RecordBuilder(code: 1)
        r.value = 2; r.point = 12; r.extra = 0b1000_0000_0001 | 1 << 31; r.subject = Array("P-0042".utf8)
        let event = Fixtures.decode(try Fixtures.profile("elevator"), r).event
        #expect(event.field("method") == .string("card"))
        #expect(event.field("floor") == .int(12))
        #expect(event.field("floors") == .array([.int(1), .int(12), .int(32)]))
        #expect(event.field("card") == .string("P-0042"), "a card number is `card`, as on doors")
        #expect(event.field("person") == nil)
    }

    @Test(arguments: [(UInt32(1), "person"), (2, "card"), (3, "pass"), (9, "subject")])
    func elevatorGrantNamesItsSubjectByMethod(method: UInt32, field: String) throws {
        var r = RecordBuilder(code: 1)
        r.value = method; r.subject = Array("S-7".utf8)
        let event = Fixtures.decode(try Fixtures.profile("elevator"), r).event
        #expect(event.field(field) == .string("S-7"))
        #expect(event.fields.filter { $0.1 == .string("S-7") }.count == 1)
    }

    /// Basement floors: a profile whose controller puts its lowest floor in bit 0 says `from -2`; there is no floor 0.
    @Test func basementFloorsComeFromTheProfile() throws {
        let text = try String(contentsOfFile: "\(Fixtures.devicesDirectory)/elevator.yaml", encoding: .utf8)
            .replacingOccurrences(of: "floors: extra.bits }", with: "floors: extra.bits from -2 }")
        let profile = try DeviceProfile.parse(text, file: "elevator-basements.yaml")
        var r = RecordBuilder(code: 1)
        r.value = 1; r.point = -2; r.extra = 0b10111
        let event = Fixtures.decode(profile, r).event
        #expect(event.field("floors") == .array([.int(-2), .int(-1), .int(1), .int(3)]))
        let bad = text.replacingOccurrences(of: "floors: extra.bits from -2 }", with: "floors: point from -2 }")
        #expect(throws: ConfigurationError.self) { try DeviceProfile.parse(bad, file: "bad.yaml") }
    }

    @Test func elevatorFaultNamesTheFaultAndDoorZone() throws {
        let profile = try Fixtures.profile("elevator")
        let names = ["passenger_trapped", "overspeed", "door_open_while_moving", "stopped_outside_door_zone",
                     "power_failure", "door_lock_circuit", "overload", "top_overrun", "bottom_overrun",
                     "moving_with_doors_open", "door_close_failure", "door_open_failure", "safety_circuit_open"]
        for (i, name) in names.enumerated() {
            var r = RecordBuilder(code: 3)
            r.value = UInt32(i + 1); r.point = -1; r.extra = UInt32(i % 2)
            let event = Fixtures.decode(profile, r).event
            #expect(event.type == "elevator.fault")
            #expect(event.alarm)
            #expect(event.field("fault") == .string(name))
            #expect(event.field("fault_code") == .int(Int64(i + 1)))
            #expect(event.field("floor") == .int(-1))
            #expect(event.field("in_door_zone") == .bool(i % 2 == 1))
        }
    }

    @Test(arguments: [
        (UInt16(2), "access.denied", false), (4, "elevator.fault_cleared", false), (5, "elevator.alarm", true),
        (6, "elevator.mode_changed", false), (7, "elevator.called", false), (8, "command.executed", false),
        (32, "device.tamper", true), (33, "device.restarted", false), (34, "device.log_nearly_full", true),
    ])
    func elevatorCodesHaveTheirTypes(code: UInt16, type: String, alarm: Bool) throws {
        var r = RecordBuilder(code: code)
        r.value = 2; r.direction = 1
        let event = Fixtures.decode(try Fixtures.profile("elevator"), r).event
        #expect(event.type == type)
        #expect(event.alarm == alarm)
        if code == 6 { #expect(event.field("mode") == .string("fire_service")) }
        if code == 7 { #expect(event.field("direction") == .string("up")) }
    }
}
