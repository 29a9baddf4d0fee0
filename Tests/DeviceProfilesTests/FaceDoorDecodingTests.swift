import AccessModel
import DeviceProfiles
import Testing

@Suite("face-door records")
struct FaceDoorDecodingTests {
    let profile: DeviceProfile
    init() throws { profile = try Fixtures.profile("face-door") }

    @Test func grantedByFaceMatchesTheSpecExamplePayload() throws {
        var r = RecordBuilder(code: 1)
        r.seq = 1042; r.point = 1; r.direction = 1; r.value = 934; r.subject = Array("P-0012".utf8)
        var (event, problems) = Fixtures.decode(profile, r)
        #expect(problems.isEmpty)
        event.serial = DeviceSerial(sanitising: "FD2411A00193")
        let source = EventSource(site: "kunming-guandu", gateway: "gw-01", device: "door-3e", kind: "face-door",
                                 location: [("building", "3"), ("entrance", "east")])
        let json = CloudEvent.json(event, source: source, journalSeq: 99, epoch: "5eed")
        #expect(json == #"{"specversion":"1.0","id":"kunming-guandu/door-3e/FD2411A00193.7/1042","source":"/accessgw/kunming-guandu/door-3e","type":"access.granted","time":"2026-11-27T08:01:02.345Z","subject":"door-3e","recordedtime":"2026-11-27T08:01:02.401Z","datacontenttype":"application/json","dataschema":"https://accessgw.example/schemas/events/access.granted/v1.json","dataclassification":"confidential","dataregulation":"pipl","data":{"site":"kunming-guandu","gateway":"gw-01","device":"door-3e","kind":"face-door","location":{"building":"3","entrance":"east"},"seq":1042,"boot":7,"alarm":false,"method":"face","person":"P-0012","score":0.934,"door":1,"direction":"in","raw":{"code":1,"point":1,"direction":1,"value":934,"extra":0,"flags":0}}}"#)
    }

    @Test(arguments: [
        (UInt16(2), "access.denied", "reason", JSONValue.string("unknown_face")),
        (3, "access.denied", "reason", .string("not_permitted")),
        (4, "access.denied", "reason", .string("liveness_failed")),
        (5, "access.granted", "method", .string("card")),
        (6, "access.denied", "reason", .string("unknown_card")),
        (7, "access.granted", "method", .string("qr")),
        (10, "access.denied", "reason", .string("blacklisted")),
        (11, "access.granted", "method", .string("pin")),
    ])
    func accessCodesCarryMethodOrReason(code: UInt16, type: String, key: String, expected: JSONValue) {
        var r = RecordBuilder(code: code)
        r.point = 2; r.direction = 2; r.value = 512; r.subject = Array("C-77".utf8)
        let event = Fixtures.decode(profile, r).event
        #expect(event.type == type)
        #expect(event.field(key) == expected)
        #expect(event.field("door") == .int(2))
        #expect(event.field("direction") == .string("out"))
        #expect(event.alarm == false)
    }

    @Test func subjectLandsInTheFieldTheCodeNames() {
        for (code, name) in [(UInt16(3), "person"), (5, "card"), (6, "card"), (7, "pass"), (10, "person"), (21, "person")] {
            var r = RecordBuilder(code: code)
            r.subject = Array("X-1".utf8)
            #expect(Fixtures.decode(profile, r).event.field(name) == .string("X-1"), "code \(code)")
        }
    }

    @Test(arguments: [
        (UInt16(13), "door.exit_request", false), (16, "door.opened", false), (17, "door.closed", false),
        (18, "door.forced", true), (19, "door.held_open", true), (20, "door.fire_release", true),
        (21, "access.duress", true), (32, "device.tamper", true), (33, "device.restarted", false),
        (34, "device.log_nearly_full", true), (8, "command.executed", false),
    ])
    func doorAndDeviceCodesHaveTheirTypeAndAlarmFlag(code: UInt16, type: String, alarm: Bool) {
        var r = RecordBuilder(code: code)
        r.point = 1
        let event = Fixtures.decode(profile, r).event
        #expect(event.type == type)
        #expect(event.alarm == alarm)
    }

    @Test func heldOpenReportsSecondsAndCommandReportsItsId() {
        var held = RecordBuilder(code: 19)
        held.value = 95; held.point = 1
        #expect(Fixtures.decode(profile, held).event.field("seconds") == .int(95))
        var command = RecordBuilder(code: 8)
        command.extra = 70_000
        #expect(Fixtures.decode(profile, command).event.field("command_id") == .int(70_000))
    }

    @Test func unknownCodeBecomesUnknownEventWithItsRawRecord() {
        var r = RecordBuilder(code: 250)
        r.value = 9; r.extra = 3; r.subject = Array("zz".utf8)
        let event = Fixtures.decode(profile, r).event
        #expect(event.type == "device.unknown_event")
        #expect(event.raw?.code == 250)
        #expect(event.raw?.value == 9)
        #expect(event.field("subject") == .string("zz"))
    }

    @Test func invalidUTF8SubjectIsKeptAsHexAndReported() {
        var r = RecordBuilder(code: 1)
        r.subject = [0x50, 0xFF, 0xFE, 0x31]
        let (event, problems) = Fixtures.decode(profile, r)
        #expect(event.type == "access.granted")
        #expect(event.field("subject_hex") == .string("50fffe31"))
        #expect(problems.map(\.description) == ["subject: invalid utf-8 byte sequence at byte 1; its bytes are kept as subject_hex"])
    }

    @Test func clockUnsynchronisedFlagIsKeptInRaw() {
        var r = RecordBuilder(code: 16)
        r.flags = 1
        #expect(Fixtures.decode(profile, r).event.raw?.flags == 1)
    }
}
