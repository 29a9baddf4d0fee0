@testable import BusPolling
import DeviceProfiles
import Testing

@Suite("event log state machine")
struct EventLogStateMachineTests {
    /// A header; the window holds what the log holds unread, up to 3, unless `window` says otherwise.
    func header(head: UInt32, tail: UInt32 = 1, boot: UInt16 = 7, window: UInt16? = nil, ack: UInt32, flags: UInt16 = 0) -> EventLogHeader {
        EventLogHeader(headSeq: head, tailSeq: tail, bootID: boot,
                       windowCount: window ?? UInt16(min(3, Int64(head) - Int64(max(ack, tail - 1)))), ackSeq: ack,
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

    /// An ack the device answered (function 23) but did not apply to its log is due again, nothing re-emitted;
    /// a seq never emitted is no ack to make due.
    @Test func anAckNotAppliedIsDueAgainWithoutReEmitting() {
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        #expect(fifo.logRead(header(head: 5, ack: 0), windowSeqs: [1, 2, 3]).emit == 0..<3)
        fifo.ackWritten(3)
        fifo.ackNotApplied(9)
        #expect(fifo.nextStep(committed: (7, 3)) == .read(.full), "9 was never emitted")
        fifo.ackNotApplied(3)
        #expect(fifo.nextStep(committed: (7, 2)) == .waitForCommit)
        #expect(fifo.nextStep(committed: (7, 3)) == .writeAck(3))
        fifo.ackWritten(3)
        // The device applied it this time: the window from 4, nothing emitted twice.
        #expect(fifo.logRead(header(head: 5, ack: 3), windowSeqs: [4, 5]).emit == 0..<2)
        #expect(fifo.lastEmitted == 5)
    }

    /// A restarted reader resumed from the journal's cursor (issue 7): what the journal holds is acked, not re-read; a
    /// loss it journalled is not reported again; a loss the device's ack passed meanwhile is reported.
    @Test func aResumedReaderStartsFromTheJournal() {
        var committedNotAcked = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        committedNotAcked.resume(boot: 7, through: 20)  // loss 1...10 and records 11...20 journalled, ack_seq still 0
        let first = committedNotAcked.logRead(header(head: 22, tail: 11, ack: 0, flags: 1), windowSeqs: [11, 12, 13])
        #expect(first.lost == nil && first.emit.isEmpty)
        #expect(committedNotAcked.nextStep(committed: (7, 20)) == .writeAck(20))
        committedNotAcked.ackWritten(20)
        #expect(committedNotAcked.logRead(header(head: 22, tail: 11, ack: 20), windowSeqs: [21, 22]).emit == 0..<2)

        var ackPassedIt = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        ackPassedIt.resume(boot: 7, through: 5)  // the device raised ack_seq 5 to 15 over 6...15
        let outcome = ackPassedIt.logRead(header(head: 35, tail: 16, ack: 15), windowSeqs: [16, 17, 18])
        #expect(outcome.lost == 6...15)
        #expect(outcome.emit == 0..<3)

        var rebooted = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        rebooted.resume(boot: 7, through: 5)  // our ack reached the device after it restarted as boot 8
        #expect(rebooted.logRead(header(head: 6, boot: 8, ack: 4), windowSeqs: [5, 6]).confirmingBoot)
        let restarted = rebooted.logRead(header(head: 6, boot: 8, ack: 4), windowSeqs: [5, 6])
        #expect(restarted.bootChanged && restarted.lost == 1...4 && restarted.emit == 0..<2)
    }

    /// A refused ack resynchronises from the device's ack_seq for the records it still holds, never reporting a
    /// loss already reported (found by the fault schedules once a loss report had to be unique).
    @Test func aRefusedAckNeverReportsALossTwice() {
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        _ = fifo.logRead(header(head: 5, ack: 0), windowSeqs: [1, 2, 3])
        let lost = fifo.logRead(header(head: 30, tail: 21, ack: 0, flags: 1), windowSeqs: [21, 22, 23])
        #expect(lost.lost == 4...20 && lost.emit == 0..<3)
        fifo.ackRejected()
        let again = fifo.logRead(header(head: 30, tail: 21, ack: 0, flags: 1), windowSeqs: [21, 22, 23])
        #expect(again.lost == nil)
        #expect(again.emit == 0..<3, "re-emitted: the journal keeps one of each")
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
        let first = fifo.logRead(header(head: 2, boot: 8, window: 2, ack: 0), windowSeqs: [1, 2])
        #expect(first.confirmingBoot && first.emit.isEmpty && !first.bootChanged, "a new boot_id is confirmed by the next read")
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
        #expect(fifo.logRead(header(head: 6, boot: 8, ack: 3), windowSeqs: [4, 5, 6]).confirmingBoot)
        let outcome = fifo.logRead(header(head: 6, boot: 8, ack: 3), windowSeqs: [4, 5, 6])
        #expect(outcome.bootChanged)
        #expect(outcome.lost == 1...3)
        #expect(outcome.emit == 0..<3)
        // An ordinary restart, the new log unacknowledged, implies no loss.
        fifo.ackWritten(6)
        _ = fifo.logRead(header(head: 2, boot: 9, window: 2, ack: 0), windowSeqs: [1, 2])
        let clean = fifo.logRead(header(head: 2, boot: 9, window: 2, ack: 0), windowSeqs: [1, 2])
        #expect(clean.bootChanged && clean.lost == nil)
    }

    @Test func ackRaisedByTheDeviceOverEventsNobodyReadIsReportedAsLoss() {
        // Found by the fault schedules (seed 1): read 14...16, then the device overwrote 17 and 18; the ack of 16
        // is raised to tail_seq - 1 = 18 and clears the overwrite flag, so only ack_seq tells of the loss.
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        _ = fifo.logRead(header(head: 27, tail: 14, ack: 13), windowSeqs: [14, 15, 16])
        fifo.ackWritten(16)
        let outcome = fifo.logRead(header(head: 32, tail: 19, ack: 18), windowSeqs: [19, 20, 21])
        #expect(outcome.lost == 17...18)
        #expect(outcome.emit == 0..<3)
        #expect(fifo.pendingAck == 21)
    }

    @Test func ackRaisedOnARestartedDeviceIsReportedAsLossUpToItsAckSeq() {
        // Found by the fault schedules (seed 13): the ack of 3 for the old boot reached a new log that had
        // overwritten 1...4, which raised it to 4.
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        _ = fifo.logRead(header(head: 6, boot: 1, ack: 0), windowSeqs: [1, 2, 3])
        fifo.ackWritten(3)
        #expect(fifo.logRead(header(head: 13, tail: 5, boot: 2, ack: 4), windowSeqs: [5, 6, 7]).confirmingBoot)
        let outcome = fifo.logRead(header(head: 13, tail: 5, boot: 2, ack: 4), windowSeqs: [5, 6, 7])
        #expect(outcome.bootChanged)
        #expect(outcome.lost == 1...4)
        #expect(outcome.emit == 0..<3)
    }

    @Test func windowGapAboveTailIsReadAgainEvenWithTheOverwriteFlag() {
        // Found by the fault schedules (seed 1): 1...6 were overwritten (flag set, tail 7), and the window skipped 7.
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        let outcome = fifo.logRead(header(head: 20, tail: 7, window: 2, ack: 0, flags: 1), windowSeqs: [8, 9])
        #expect(outcome.lost == 1...6)
        #expect(outcome.emit.isEmpty)
        #expect(fifo.pendingAck == nil)
        let again = fifo.logRead(header(head: 20, tail: 7, ack: 0, flags: 1), windowSeqs: [7, 8, 9])
        #expect(again.lost == nil)
        #expect(again.emit == 0..<3)
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
        let outcome = fifo.logRead(header(head: 9, window: 3, ack: 4), windowSeqs: [5, 6])
        #expect(outcome.emit == 0..<2)
        #expect(outcome.problems.isEmpty)
    }

    /// Finding 8: header fields no device can hold make the read a failed poll that changes nothing.
    @Test func garbageHeadersAreRejectedWhole() {
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        let garbage: [(EventLogHeader, String)] = [
            (header(head: 9, window: 5, ack: 4), "window_count 5 exceeds the 3 records of the window"),
            (header(head: 9, ack: 4).with { $0.ackSeq = 12 }, "ack_seq 12 is above head_seq 9"),
            (header(head: 9, tail: 11, window: 0, ack: 9), "tail_seq 11 outside 1...head_seq + 1 (10)"),
            (header(head: 9, tail: 10, window: 0, ack: 4), "tail_seq 10 (nothing held) with ack_seq 4 below head_seq 9"),
            (header(head: 9, tail: 10, window: 1, ack: 9), "window_count 1 exceeds the 0 unread event(s) the log holds"),
            (EventLogHeader(headSeq: 0, tailSeq: 2, bootID: 7, windowCount: 0, ackSeq: 0, unread: 0, logFlags: 0),
             "head_seq 0 (empty log) with tail_seq 2 and window_count 0"),
            (header(head: 5, window: 3, ack: 4), "window_count 3 exceeds the 1 unread event(s) the log holds"),
            (EventLogHeader(headSeq: 0, tailSeq: 0, bootID: 7, windowCount: 2, ackSeq: 0, unread: 0, logFlags: 0),
             "head_seq 0 (empty log) with tail_seq 0 and window_count 2"),
        ]
        for (bad, reason) in garbage {
            let outcome = fifo.logRead(bad, windowSeqs: [5, 6, 7])
            #expect(outcome.badHeader == reason)
            #expect(outcome.emit.isEmpty && outcome.lost == nil && fifo.boot == nil)
        }
        let empty = EventLogHeader(headSeq: 0, tailSeq: 0, bootID: 7, windowCount: 0, ackSeq: 0, unread: 0, logFlags: 0)
        #expect(fifo.logRead(empty, windowSeqs: []).badHeader == nil)
    }

    /// Issue 19 item 1: a device that frees what was acknowledged shows tail_seq = head_seq + 1 when its log is empty,
    /// and 0 or 1 with head_seq 0 (SPEC 3.4): sane headers, read on as usual, never a failed poll.
    @Test func aDeviceThatFreesAcknowledgedRecordsShowsASaneEmptyLog() {
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        for tail in UInt32(0)...1 {
            let empty = EventLogHeader(headSeq: 0, tailSeq: tail, bootID: 7, windowCount: 0, ackSeq: 0, unread: 0, logFlags: 0)
            #expect(fifo.implausibility(of: empty) == nil, "head_seq 0, tail_seq \(tail)")
        }
        #expect(fifo.logRead(header(head: 6, ack: 0), windowSeqs: [1, 2, 3]).emit == 0..<3)
        fifo.ackWritten(3)
        #expect(fifo.logRead(header(head: 6, tail: 4, ack: 3), windowSeqs: [4, 5, 6]).emit == 0..<3)
        fifo.ackWritten(6)
        let drained = fifo.logRead(header(head: 6, tail: 7, ack: 6), windowSeqs: [])
        #expect(drained.badHeader == nil && drained.lost == nil && drained.problems.isEmpty && drained.emit.isEmpty)
        #expect(!fifo.hasBacklog)
        #expect(fifo.logRead(header(head: 7, tail: 7, ack: 6), windowSeqs: [7]).emit == 0..<1)
    }

    /// Finding 1: after a refused ack the device's own ack_seq is where reading starts again; what it still holds
    /// is emitted again (the journal recognises it) and acked, so acking never stops.
    @Test func rejectedAckResynchronisesFromTheDevicesAck() {
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: false)
        _ = fifo.logRead(header(head: 3, ack: 0), windowSeqs: [1, 2, 3])
        #expect(fifo.nextStep(committed: (7, 3)) == .writeAck(3))
        fifo.ackRejected()
        #expect(fifo.refusedAcks == 1)
        #expect(fifo.ackRetryDelay(pollMillis: 50) == 50)
        fifo.ackRejected()
        #expect(fifo.ackRetryDelay(pollMillis: 50) == 100)
        #expect(fifo.nextStep(committed: (7, 3)) == .read(.full))
        let again = fifo.logRead(header(head: 4, ack: 0), windowSeqs: [1, 2, 3])
        #expect(again.emit == 0..<3 && again.lost == nil)
        #expect(fifo.nextStep(committed: (7, 3)) == .writeAck(3))
        fifo.ackWritten(3)
        #expect(fifo.refusedAcks == 0 && fifo.ackRetryDelay(pollMillis: 50) == 0)
        #expect(fifo.logRead(header(head: 4, ack: 3), windowSeqs: [4]).emit == 0..<1)
    }

    /// Finding 5: a gap is loss only up to tail_seq - 1; a skipped record the device still holds is read again.
    @Test func windowGapIsLossOnlyWhenTheDeviceSaysSo() {
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        _ = fifo.logRead(header(head: 3, ack: 0), windowSeqs: [1, 2, 3])
        fifo.ackWritten(3)
        let gap = fifo.logRead(header(head: 9, tail: 4, ack: 3), windowSeqs: [5, 6, 7])
        #expect(gap.lost == nil && gap.emit.isEmpty)
        #expect(gap.problems == ["record 0 has seq 5, expected 4 (tail_seq 4 shows the device still holds it)"])
        #expect(fifo.pendingAck == nil && fifo.lastEmitted == 3)
        // The flag may stem from earlier overwrites; tail_seq 4 says 4 is still held: read again (fault schedules).
        let flagged = fifo.logRead(header(head: 9, tail: 4, ack: 3, flags: 1), windowSeqs: [5, 6, 7])
        #expect(flagged.lost == nil && flagged.emit.isEmpty)
        #expect(fifo.logRead(header(head: 9, tail: 4, ack: 3, flags: 1), windowSeqs: [4, 5, 6]).emit == 0..<3)
        fifo.ackWritten(6)
        let overwritten = fifo.logRead(header(head: 30, tail: 11, ack: 6), windowSeqs: [11, 12, 13])
        #expect(overwritten.lost == 7...10 && overwritten.emit == 0..<3)
    }

    /// Finding 8: a boot_id that reads differently each time is never taken for a restart, and returning to a boot
    /// this reader was on reports no loss.
    @Test func flappingBootIDIsNeitherARestartNorLoss() {
        var fifo = EventLogStateMachine(windowRecords: 3, alwaysReadFull: true)
        _ = fifo.logRead(header(head: 3, ack: 0), windowSeqs: [1, 2, 3])
        fifo.ackWritten(3)
        for boot in UInt16(8)...20 {
            let outcome = fifo.logRead(header(head: 5, boot: boot, window: 2, ack: 3), windowSeqs: [4, 5])
            #expect(outcome.confirmingBoot && outcome.emit.isEmpty && outcome.lost == nil)
        }
        #expect(fifo.boot == 7)
        #expect(fifo.logRead(header(head: 5, window: 2, ack: 3), windowSeqs: [4, 5]).emit == 0..<2)
        fifo.ackWritten(5)
        // Read twice alike: taken as a restart, with the ack-reached-new-boot loss report...
        _ = fifo.logRead(header(head: 5, boot: 9, ack: 5), windowSeqs: [])
        #expect(fifo.logRead(header(head: 5, boot: 9, ack: 5), windowSeqs: []).lost == 1...5)
        fifo.ackWritten(5)
        // ...but back to boot 7, a boot it was on, is no fresh log and no loss.
        _ = fifo.logRead(header(head: 5, boot: 7, ack: 5), windowSeqs: [])
        let back = fifo.logRead(header(head: 5, boot: 7, ack: 5), windowSeqs: [])
        #expect(back.bootChanged && back.lost == nil)
    }
}

extension EventLogHeader {
    func with(_ change: (inout EventLogHeader) -> Void) -> EventLogHeader {
        var copy = self
        change(&copy)
        return copy
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

@Suite("bus turn: commands first")
struct BusTurnTests {
    @Test func aWaitingCommandGoesBeforeEveryDuePollAndDrain() {
        #expect(BusPoller.nextTurn(commandWaiting: true, soonest: (3, 0), now: 100) == .command)
        #expect(BusPoller.nextTurn(commandWaiting: true, soonest: nil, now: 100) == .command)
        #expect(BusPoller.nextTurn(commandWaiting: false, soonest: (3, 90), now: 100) == .poll(3))
        #expect(BusPoller.nextTurn(commandWaiting: false, soonest: (1, 400), now: 100) == .wait(millis: 300))
        #expect(BusPoller.nextTurn(commandWaiting: false, soonest: (1, 9_000), now: 100) == .wait(millis: 1000))
        #expect(BusPoller.nextTurn(commandWaiting: false, soonest: nil, now: 100) == .idle)
    }

    /// Issue 19 items 4 and 11: a command's retry or a probe's read goes between two polls, never two in a row
    /// while a poll is due; with nothing due it goes at once, and a retry not yet due is waited for.
    @Test func retriesAndProbeReadsGoOneBetweenTwoPolls() {
        #expect(BusPoller.nextTurn(commandWaiting: false, betweenDue: 100, pollSinceBetween: true, soonest: (2, 50), now: 100) == .between)
        #expect(BusPoller.nextTurn(commandWaiting: false, betweenDue: 100, pollSinceBetween: false, soonest: (2, 50), now: 100) == .poll(2))
        #expect(BusPoller.nextTurn(commandWaiting: false, betweenDue: 100, pollSinceBetween: false, soonest: (2, 300), now: 100) == .between)
        #expect(BusPoller.nextTurn(commandWaiting: false, betweenDue: 100, pollSinceBetween: false, soonest: nil, now: 100) == .between)
        #expect(BusPoller.nextTurn(commandWaiting: false, betweenDue: 150, pollSinceBetween: true, soonest: (2, 300), now: 100) == .wait(millis: 50))
        #expect(BusPoller.nextTurn(commandWaiting: false, betweenDue: 150, pollSinceBetween: true, soonest: nil, now: 100) == .wait(millis: 50))
        #expect(BusPoller.nextTurn(commandWaiting: true, betweenDue: 100, pollSinceBetween: true, soonest: (2, 50), now: 100) == .command)
    }
}
