@testable import BusPolling
import Testing

/// SPEC 3.5: a map-2 write (a relay pulse) is never doubled and never left on.
@Suite("write plan (map-2 commands)")
struct WritePlanTests {
    @Test func aPulseWritesTheValueThenRestoresIt() {
        var plan = WritePlan(value: 1, rest: 0, pulseMillis: 1000)
        #expect(plan.start(deadlinePassed: false) == .write(1))
        #expect(plan.next(after: .written, deadlinePassed: false) == .pulseThenRestore(millis: 1000))
        #expect(plan.phase == .restoring)
        #expect(plan.next(after: .written, deadlinePassed: true) == .done(.written(attempts: 1)),
                "the restoring write happens past the deadline too, and the command was written once")
    }

    @Test func aPlainWriteEndsWithItsReply() {
        var plan = WritePlan(value: 3)
        #expect(plan.start(deadlinePassed: false) == .write(3))
        #expect(plan.next(after: .written, deadlinePassed: false) == .done(.written(attempts: 1)))
    }

    @Test func nothingIsWrittenPastTheDeadline() {
        var plan = WritePlan(value: 1, pulseMillis: 1000)
        #expect(plan.start(deadlinePassed: true) == nil)
    }

    @Test func anUnansweredWriteThatWasAppliedIsNotRepeated() {
        var plan = WritePlan(value: 1, rest: 0, pulseMillis: 500)
        _ = plan.start(deadlinePassed: false)
        #expect(plan.next(after: .noReply("timeout"), deadlinePassed: false) == .readBack)
        #expect(plan.next(after: .readBack(1), deadlinePassed: false) == .pulseThenRestore(millis: 500), "applied: never doubled")
        #expect(plan.next(after: .written, deadlinePassed: false) == .done(.written(attempts: 1)))
    }

    @Test func anUnansweredWriteNotAppliedIsRepeatedOnlyBeforeTheDeadline() {
        var plan = WritePlan(value: 1, rest: 0, pulseMillis: 500)
        _ = plan.start(deadlinePassed: false)
        _ = plan.next(after: .noReply("timeout"), deadlinePassed: false)
        #expect(plan.next(after: .readBack(0), deadlinePassed: false) == .write(1))
        #expect(plan.next(after: .written, deadlinePassed: false) == .pulseThenRestore(millis: 500))
        #expect(plan.next(after: .written, deadlinePassed: false) == .done(.written(attempts: 2)))

        var late = WritePlan(value: 1, rest: 0, pulseMillis: 500)
        _ = late.start(deadlinePassed: false)
        _ = late.next(after: .noReply("timeout"), deadlinePassed: false)
        #expect(late.next(after: .readBack(0), deadlinePassed: true) == .done(.failed(reason: "no_reply", detail: "timeout")),
                "shown not applied and past the deadline: nothing is on, nothing to restore")
    }

    @Test func aPulseThatCannotBeToldIsRestoredAllTheSame() {
        var plan = WritePlan(value: 1, rest: 0, pulseMillis: 500)
        _ = plan.start(deadlinePassed: false)
        _ = plan.next(after: .noReply("timeout"), deadlinePassed: false)
        #expect(plan.next(after: .readBack(nil), deadlinePassed: false) == .write(0), "never left on")
        #expect(plan.next(after: .noReply("timeout"), deadlinePassed: true) == .readBack)
        #expect(plan.next(after: .readBack(1), deadlinePassed: true) == .write(0), "still on: restored again, past the deadline")
        #expect(plan.next(after: .written, deadlinePassed: true) == .done(.failed(reason: "no_reply", detail: "timeout")))
    }

    @Test func aRefusedWriteIsNotRetried() {
        var plan = WritePlan(value: 1, pulseMillis: 500)
        _ = plan.start(deadlinePassed: false)
        #expect(plan.next(after: .exception("illegal data address"), deadlinePassed: false)
                == .done(.failed(reason: "device_exception", detail: "illegal data address")))
    }
}
