import Simulators
import Testing

@Suite("Event log state machine")
struct EventLogTests {
    static func event() -> LoggedEvent {
        LoggedEvent(seq: 0, time: 0, millis: 0, code: 1, point: 1, direction: 1, flags: 0, value: 0, extra: 0,
                    subject: [])
    }

    @Test func seqsStartAtOneAndTheWindowShowsAckPlusOneOnwards() throws {
        var log = EventLog(capacity: 10)
        #expect(log.head == 0 && log.tail == 0 && log.window().isEmpty)
        for _ in 0..<5 { _ = log.append(Self.event()) }
        #expect(log.window().map(\.seq) == [1, 2, 3])
        try log.acknowledge(2)
        #expect(log.window().map(\.seq) == [3, 4, 5])
        #expect(log.unread == 3)
    }

    @Test func ackAboveHeadIsRejectedWithException03() {
        var log = EventLog(capacity: 10)
        _ = log.append(Self.event())
        #expect { try log.acknowledge(2) } throws: { ($0 as? ModbusException)?.code == 3 }
        #expect(log.ack == 0)
    }

    @Test func ackBelowTailIsRaisedToTailMinusOne() throws {
        var log = EventLog(capacity: 10)
        for _ in 0..<25 { _ = log.append(Self.event()) }
        #expect(log.tail == 16)
        try log.acknowledge(3)
        #expect(log.ack == 15)
    }

    @Test func overflowMovesTailAndFlagsUntilTheNextAck() throws {
        var log = EventLog(capacity: 10)
        for _ in 0..<10 { _ = log.append(Self.event()) }
        #expect(!log.overwritten && log.nearlyFull)
        _ = log.append(Self.event())
        #expect(log.overwritten && log.tail == 2)
        #expect(log.window().first?.seq == 2)
        try log.acknowledge(11)
        #expect(!log.overwritten && !log.nearlyFull)
    }

    @Test func acknowledgedEventsAreOverwrittenWithoutTheOverflowFlag() throws {
        var log = EventLog(capacity: 10)
        for _ in 0..<10 { _ = log.append(Self.event()) }
        try log.acknowledge(10)
        _ = log.append(Self.event())
        #expect(!log.overwritten && log.tail == 2)
    }
}
