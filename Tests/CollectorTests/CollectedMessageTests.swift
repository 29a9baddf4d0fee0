import AccessModel
import Collector
import Testing

@Suite struct CollectedMessageTests {
    static let event = #"""
        {"specversion":"1.0","id":"site-a/door-1/SN1.7/42","source":"/accessgw/site-a/door-1","type":"access.granted",
         "time":"2026-12-07T08:00:00.000Z","recordedtime":"2026-12-07T08:00:00.120Z","gwepoch":"9f3a1c0d","gwseq":42,
         "data":{"site":"site-a","gateway":"gw-01","device":"door-1","seq":42}}
        """#

    static func read(_ topic: String, _ payload: String) -> CollectedMessage {
        CollectedMessage.read(topic: topic, payload: Array(payload.utf8), prefix: "accessgw")
    }

    static func rejection(_ message: CollectedMessage) -> CollectedMessage.Rejection? {
        if case let .rejected(rejection) = message { return rejection }
        return nil
    }

    @Test func anEventBecomesARowWithItsPlace() throws {
        guard case let .event(row) = Self.read("accessgw/site-a/door-1/event/access.granted", Self.event) else {
            Issue.record("not read as an event"); return
        }
        #expect(row.id == "site-a/door-1/SN1.7/42")
        #expect(row.source == "/accessgw/site-a/door-1" && row.type == "access.granted")
        #expect(row.site == "site-a" && row.gateway == "gw-01" && row.device == "door-1")
        #expect(row.gwepoch == "9f3a1c0d" && row.gwseq == 42)
        #expect(row.time == Timestamp(rfc3339: "2026-12-07T08:00:00.000Z"))
        #expect(row.receiptKey == ReceiptKey(site: "site-a", gateway: "gw-01", epoch: "9f3a1c0d"))
    }

    @Test func anEventWithoutReceiptAttributesIsStoredWithoutAPlace() {
        let payload = #"{"id":"x/1","source":"/accessgw/s/d","type":"door.opened","data":{"gateway":"gw-01"}}"#
        guard case let .event(row) = Self.read("accessgw/s/d/event/door.opened", payload) else { Issue.record("rejected"); return }
        #expect(row.gwseq == nil && row.receiptKey == nil && row.site == "s" && row.device == "d")
    }

    @Test(arguments: [
        ("not json", "not_json"),
        ("[1,2]", "not_json"),
        (#"{"source":"/a","type":"t"}"#, "no_id"),
        (#"{"id":"","source":"/a","type":"t"}"#, "no_id"),
        (#"{"id":7,"source":"/a","type":"t"}"#, "no_id"),
        (#"{"id":"a","type":"t"}"#, "not_cloudevent"),
        (#"{"id":"a","source":"/a","type":"t","time":"yesterday"}"#, "bad_time"),
        (#"{"id":"a","source":"/a","type":"t","gwepoch":"ab","gwseq":0}"#, "bad_gwseq"),
        (#"{"id":"a","source":"/a","type":"t","gwepoch":"ab","gwseq":"3"}"#, "bad_gwseq"),
        (#"{"id":"a","source":"/a","type":"t","gwseq":3}"#, "bad_gwseq"),
        (#"{"id":"a\u0000b","source":"/a","type":"t"}"#, "nul"),
        (#"{"id":"a","source":"/a","type":"gateway.erased","data":{}}"#, "bad_erasure"),
        (#"{"id":"a","source":"/a","type":"gateway.events_unconfirmed_expired","data":{"from_gwseq":5,"to_gwseq":2}}"#, "bad_expiry"),
    ])
    func badEventsAreRejectedWithAReason(payload: String, reason: String) {
        let rejection = Self.rejection(Self.read("accessgw/s/d/event/t", payload))
        #expect(rejection?.reason == reason)
        #expect(rejection?.message.contains("accessgw/s/d/event/t") == true)
    }

    @Test func invalidUTF8IsRejected() {
        var bytes = Array(#"{"id":"a","source":"/a","type":"t","x":""#.utf8)
        bytes += [0xC3, 0x28]
        bytes += Array(#""}"#.utf8)
        let read = CollectedMessage.read(topic: "accessgw/s/d/event/t", payload: bytes, prefix: "accessgw")
        #expect(Self.rejection(read)?.reason == "not_utf8")
    }

    @Test func erasureAndExpiryCarryWhatTheyMean() {
        let erased = #"{"id":"s/gateway/g/gw-01/ab.9","source":"/accessgw/s/gateway","type":"gateway.erased","gwepoch":"ab","gwseq":5,"data":{"gateway":"gw-01","erases":"s/d/1.1/5"}}"#
        guard case let .event(row) = Self.read("accessgw/s/gateway/event/gateway.erased", erased) else { Issue.record("rejected"); return }
        #expect(row.erases == "s/d/1.1/5" && row.gwseq == 5)
        let expired = #"{"id":"s/gateway/g/gw-01/ab.10","source":"/accessgw/s/gateway","type":"gateway.events_unconfirmed_expired","gwepoch":"ab","gwseq":10,"data":{"gateway":"gw-01","count":3,"from_gwseq":6,"to_gwseq":8}}"#
        guard case let .event(row) = Self.read("accessgw/s/gateway/event/gateway.events_unconfirmed_expired", expired) else {
            Issue.record("rejected"); return
        }
        #expect(row.expired == 6...8)
    }

    @Test func stateAndStatusTopicsAreRecognised() {
        guard case let .state(state) = Self.read("accessgw/s/door-1/state", #"{"door":"closed","online":true}"#) else {
            Issue.record("not a state"); return
        }
        #expect(state.site == "s" && state.device == "door-1")
        guard case let .status(status) = Self.read("accessgw/s/gateway/gw-01/status", #"{"state":"online"}"#) else {
            Issue.record("not a status"); return
        }
        #expect(status.gateway == "gw-01" && status.state == "online")
    }

    @Test func aMultiLevelPrefixIsHonoured() {
        let read = CollectedMessage.read(topic: "pm/north/accessgw/s/d/state", payload: Array("{}".utf8), prefix: "pm/north/accessgw")
        guard case .state = read else { Issue.record("not a state: \(read)"); return }
        #expect(Self.rejection(CollectedMessage.read(topic: "other/s/d/state", payload: Array("{}".utf8), prefix: "pm/north/accessgw"))?.reason == "topic")
    }

    @Test func unknownTopicsAreRejected() {
        #expect(Self.rejection(Self.read("accessgw/s/d/command/open", "{}"))?.reason == "topic")
        #expect(Self.rejection(Self.read("accessgw", "{}"))?.reason == "topic")
    }
}

@Suite struct BatchPlanTests {
    static func event(_ id: String, source: String = "/accessgw/s/d", value: Int64 = 1) -> CollectedMessage {
        let payload = #"{"id":"\#(id)","source":"\#(source)","type":"t","data":{"gateway":"g","v":\#(value)}}"#
        return CollectedMessage.read(topic: "accessgw/s/d/event/t", payload: Array(payload.utf8), prefix: "accessgw")
    }

    @Test func aCopyInTheSameBatchIsADuplicateAndAnotherPayloadAConflict() {
        let plan = BatchPlan([Self.event("a"), Self.event("b"), Self.event("a"), Self.event("a", source: "/accessgw/other/d", value: 2)])
        #expect(plan.events.map(\.id) == ["a", "b"])
        #expect(plan.duplicates == 1)
        #expect(plan.conflicts.map(\.id) == ["a"])
        #expect(plan.conflicts.first?.firstSource == "/accessgw/s/d" && plan.conflicts.first?.secondSource == "/accessgw/other/d")
    }

    @Test func onlyTheLastStateOfADeviceIsWritten() {
        let first = CollectedMessage.read(topic: "accessgw/s/d/state", payload: Array(#"{"door":"open"}"#.utf8), prefix: "accessgw")
        let second = CollectedMessage.read(topic: "accessgw/s/d/state", payload: Array(#"{"door":"closed"}"#.utf8), prefix: "accessgw")
        let plan = BatchPlan([first, second])
        #expect(plan.states.count == 1)
        #expect(plan.states.first?.payload["door"] == .string("closed"))
    }
}

@Suite struct CollectorSchemaTests {
    @Test func versionsAscendFromOneWithoutGaps() {
        #expect(CollectorSchema.migrations.map(\.version) == Array(1...CollectorSchema.version))
    }

    @Test func aDatabaseNewerThanTheCollectorIsRefused() {
        #expect(CollectorSchema.pending(from: CollectorSchema.version + 1) == nil)
        #expect(CollectorSchema.pending(from: 1)?.map(\.version) == Array(2...CollectorSchema.version))
        #expect(CollectorSchema.pending(from: CollectorSchema.version)?.isEmpty == true)
    }
}
