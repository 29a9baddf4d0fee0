import BusPolling
import DeviceProfiles
import Testing

@Suite("event log state machine")
struct EventLogStateMachineTests {
    func header(head: UInt32, tail: UInt32 = 1, boot: UInt16 = 7, window: UInt16 = 3, ack: UInt32, flags: UInt16 = 0) -> EventLogHeader {
        EventLogHeader(headSeq: head, tailSeq: tail, bootID: boot, windowCount: window, ackSeq: ack,
                       unread: UInt16(min(head - ack, 65535)), logFlags: flags)
    }

    @Test func ackIsWrittenOnlyAfterJournalCommit() {
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        #expect(fifo.nextStep(committed: nil) == .read(.full))
        let outcome = fifo.logRead(header(head: 5, ack: 0), windowSeqs: [1, 2, 3])
        #expect(outcome.emit == 0..<3)
        #expect(outcome.lost == nil)
        #expect(fifo.nextStep(committed: nil) == .waitForCommit)
        #expect(fifo.nextStep(committed: (7, 2)) == .waitForCommit)
        #expect(fifo.nextStep(committed: (8, 3)) == .waitForCommit)
        #expect(fifo.nextStep(committed: (7, 3)) == .writeAck(3))
        fifo.ackWritten(3)
        #expect(fifo.hasBacklog)
        #expect(fifo.nextStep(committed: (7, 3)) == .read(.full))
    }

    @Test func rtuReadsHeaderWhileIdleAndWindowOnlyWhenUnread() {
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: false)
        #expect(fifo.nextStep(committed: nil) == .read(.header))
        #expect(fifo.logRead(header(head: 4, ack: 4), windowSeqs: nil).readWindowNow == false)
        #expect(fifo.nextStep(committed: nil) == .read(.header))
        #expect(fifo.logRead(header(head: 6, ack: 4), windowSeqs: nil).readWindowNow)
        #expect(fifo.nextStep(committed: nil) == .read(.full))
        #expect(fifo.logRead(header(head: 6, window: 2, ack: 4), windowSeqs: [5, 6]).emit == 0..<2)
        fifo.ackWritten(6)
        #expect(fifo.nextStep(committed: (7, 6)) == .read(.header))
    }

    @Test func firstContactStartsAfterTheDevicesAck() {
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        let outcome = fifo.logRead(header(head: 1042, tail: 43, ack: 1039), windowSeqs: [1040, 1041, 1042])
        #expect(outcome.emit == 0..<3)
        #expect(outcome.lost == nil)
        #expect(fifo.lastEmitted == 1042)
    }

    @Test func overwrittenSeqsAreReportedAsLostWithTheirRange() {
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        _ = fifo.logRead(header(head: 3, ack: 0), windowSeqs: [1, 2, 3])
        fifo.ackWritten(3)
        // 2000 more events into a 1000-record log: 4...1003 were overwritten.
        let outcome = fifo.logRead(header(head: 2003, tail: 1004, ack: 3, flags: 1), windowSeqs: [1004, 1005, 1006])
        #expect(outcome.lost == 4...1003)
        #expect(outcome.emit == 0..<3)
        #expect(fifo.pendingAck == 1006)
    }

    @Test func newBootResyncsWithoutReportingLoss() {
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        _ = fifo.logRead(header(head: 500, ack: 497), windowSeqs: [498, 499, 500])
        fifo.ackWritten(500)
        let outcome = fifo.logRead(header(head: 2, boot: 8, window: 2, ack: 0), windowSeqs: [1, 2])
        #expect(outcome.bootChanged)
        #expect(outcome.lost == nil)
        #expect(outcome.emit == 0..<2)
        #expect(fifo.boot == 8)
        #expect(fifo.nextStep(committed: (7, 500)) == .waitForCommit)
        #expect(fifo.nextStep(committed: (8, 2)) == .writeAck(2))
    }

    @Test func ackThatReachedARestartedDeviceIsReportedAsLoss() {
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        _ = fifo.logRead(header(head: 5, ack: 0), windowSeqs: [1, 2, 3])
        fifo.ackWritten(3)
        // The device restarted between the read and the ack and logged 6 new events; our ack 3 released 1...3.
        let outcome = fifo.logRead(header(head: 6, boot: 8, ack: 3), windowSeqs: [4, 5, 6])
        #expect(outcome.bootChanged)
        #expect(outcome.lost == 1...3)
        #expect(outcome.emit == 0..<3)
        // An ordinary restart, the new log unacknowledged, implies no loss.
        fifo.ackWritten(6)
        let clean = fifo.logRead(header(head: 2, boot: 9, window: 2, ack: 0), windowSeqs: [1, 2])
        #expect(clean.bootChanged && clean.lost == nil)
    }

    @Test func seqGoingBackWithoutNewBootIsAProblemAndResyncs() {
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        _ = fifo.logRead(header(head: 10, ack: 7), windowSeqs: [8, 9, 10])
        fifo.ackWritten(10)
        let outcome = fifo.logRead(header(head: 2, window: 2, ack: 0), windowSeqs: [1, 2])
        #expect(outcome.problems == ["head_seq went back from 10 to 2 without a new boot_id; resynchronised"])
        #expect(outcome.emit == 0..<2)
    }

    @Test func garbledSeqStopsTheWindowAndKeepsTheRestForLater() {
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        let outcome = fifo.logRead(header(head: 9, ack: 4), windowSeqs: [5, 77, 7])
        #expect(outcome.emit == 0..<1)
        #expect(outcome.problems == ["record 1 has seq 77 outside the log (head_seq 9)"])
        #expect(fifo.pendingAck == 5)
        let skipped = fifo.logRead(header(head: 9, ack: 4), windowSeqs: [5, 6, 8])
        #expect(skipped.emit == 1..<2)
    }

    @Test func truncatedWindowEmitsOnlyTheRecordsReceived() {
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        let outcome = fifo.logRead(header(head: 9, window: 5, ack: 4), windowSeqs: [5, 6])
        #expect(outcome.emit == 0..<2)
        #expect(outcome.problems == ["window_count 5 exceeds the 3 records of the window"])
    }

    @Test func rejectedAckLeadsToAFreshRead() {
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: false)
        _ = fifo.logRead(header(head: 3, ack: 0), windowSeqs: [1, 2, 3])
        fifo.ackRejected()
        #expect(fifo.nextStep(committed: (7, 3)) == .read(.full))
    }
}

@Suite("device health state machine")
struct DeviceHealthStateMachineTests {
    @Test func deviceGoesOfflineAfterThreeFailuresAndBacksOffToThirtySeconds() {
        var health = DeviceHealthStateMachine()
        #expect(health.pollFailed() == nil)
        #expect(health.pollFailed() == nil)
        #expect(health.nextPollDelay(pollMillis: 200) == 200)
        #expect(health.pollFailed() == .wentOffline)
        #expect(health.pollFailed() == nil)
        let delays = (0..<10).map { _ in
            _ = health.pollFailed()
            return health.nextPollDelay(pollMillis: 200)
        }
        #expect(delays == delays.sorted())
        #expect(delays.last == 30_000)
        #expect(health.pollSucceeded() == .cameOnline)
        #expect(health.nextPollDelay(pollMillis: 200) == 200)
        #expect(health.pollSucceeded() == nil)
    }

    @Test func firstAnswerBringsTheDeviceOnline() {
        var health = DeviceHealthStateMachine()
        #expect(health.pollSucceeded() == .cameOnline)
        #expect(health.pollFailed() == nil)
        #expect(health.status == .online)
    }
}
