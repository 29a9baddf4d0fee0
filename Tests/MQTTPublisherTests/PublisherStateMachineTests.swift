import Testing
@testable import MQTTPublisher

@Suite struct PublisherStateMachineTests {
    private func connectedMachine(maxInflight: Int = 3) -> PublisherStateMachine {
        var machine = PublisherStateMachine(maxInflight: maxInflight)
        machine.started()
        #expect(machine.connackReceived(code: 0) == .publishStatus(carriedOver: 0))
        return machine
    }

    @Test func nothingMaySendBeforeTheBrokerAcceptsTheConnection() {
        var machine = PublisherStateMachine(maxInflight: 3)
        #expect(machine.allowance == 0)
        machine.started()
        #expect(machine.connection == .connecting)
        #expect(machine.allowance == 0)
        #expect(!machine.maySend(journalSeq: 1))
    }

    @Test func allowanceShrinksWithEachPublicationAndGrowsWithEachAck() {
        var machine = connectedMachine(maxInflight: 3)
        #expect(machine.allowance == 3)
        machine.published(mid: 1, journalSeq: 10)
        machine.published(mid: 2, journalSeq: 11)
        machine.published(mid: 3, journalSeq: 12)
        #expect(machine.allowance == 0)
        #expect(!machine.maySend(journalSeq: 13))
        #expect(machine.acknowledged(mid: 2, reasonCode: 0) == .markPublished(journalSeq: 11))
        #expect(machine.allowance == 1)
        #expect(machine.oldestUnacknowledgedJournalSeq == 10)
    }

    @Test func retainedStatePublicationsDoNotUseTheJournalWindow() {
        var machine = connectedMachine(maxInflight: 1)
        machine.published(mid: 7, journalSeq: nil)
        #expect(machine.allowance == 1)
        #expect(machine.acknowledged(mid: 7, reasonCode: 0) == .stateAcknowledged)
        #expect(machine.inflightCount == 0)
    }

    @Test func eachAckIsReportedOnceAndUnknownMidsAreIgnored() {
        var machine = connectedMachine()
        machine.published(mid: 5, journalSeq: 1)
        #expect(machine.acknowledged(mid: 5, reasonCode: 0) == .markPublished(journalSeq: 1))
        #expect(machine.acknowledged(mid: 5, reasonCode: 0) == .unknown)
        #expect(machine.acknowledged(mid: 99, reasonCode: 0) == .unknown)
        #expect(machine.journalInflightCount == 0)
    }

    @Test func journalSeqsMustGrow() {
        var machine = connectedMachine()
        machine.published(mid: 1, journalSeq: 5)
        #expect(!machine.maySend(journalSeq: 5))
        #expect(!machine.maySend(journalSeq: 4))
        #expect(machine.maySend(journalSeq: 6))
    }

    @Test func aRejectingPubackDoesNotMarkTheEventPublished() {
        var machine = connectedMachine()
        machine.published(mid: 1, journalSeq: 5)
        #expect(machine.acknowledged(mid: 1, reasonCode: 0x87) == .rejected(journalSeq: 5, reasonCode: 0x87))
        #expect(machine.allowance == 3)
    }

    @Test func noNoSubscribersReasonIsStillSuccess() {
        var machine = connectedMachine()
        machine.published(mid: 1, journalSeq: 5)
        #expect(machine.acknowledged(mid: 1, reasonCode: 0x10) == .markPublished(journalSeq: 5))
    }

    @Test func inflightEntriesSurviveADisconnectAndAreMarkedOnlyOnTheirAck() {
        var machine = connectedMachine()
        machine.published(mid: 1, journalSeq: 10)
        machine.published(mid: 2, journalSeq: 11)
        #expect(machine.disconnected(rc: 7) == .connectionLost(heldByLibrary: 2))
        #expect(machine.connection == .connecting)
        #expect(machine.allowance == 0)
        #expect(machine.oldestUnacknowledgedJournalSeq == 10)
        #expect(machine.connackReceived(code: 0) == .publishStatus(carriedOver: 2))
        #expect(machine.acknowledged(mid: 1, reasonCode: 0) == .markPublished(journalSeq: 10))
        #expect(machine.acknowledged(mid: 2, reasonCode: 0) == .markPublished(journalSeq: 11))
    }

    @Test func newEventsWaitUntilCarriedOverOnesAreAcknowledged() {
        var machine = connectedMachine(maxInflight: 10)
        machine.published(mid: 1, journalSeq: 10)
        machine.published(mid: 2, journalSeq: 11)
        _ = machine.disconnected(rc: 7)
        _ = machine.connackReceived(code: 0)
        #expect(machine.resendingCount == 2)
        #expect(machine.allowance == 0, "a new event now would overtake the library's resends")
        _ = machine.acknowledged(mid: 1, reasonCode: 0)
        #expect(machine.allowance == 0)
        _ = machine.acknowledged(mid: 2, reasonCode: 0)
        #expect(machine.allowance == 10)
        #expect(machine.maySend(journalSeq: 12))
    }

    @Test func carriedOverStatePublicationsDoNotHoldBackEvents() {
        var machine = connectedMachine()
        machine.published(mid: 1, journalSeq: nil)
        _ = machine.disconnected(rc: 7)
        #expect(machine.connackReceived(code: 0) == .publishStatus(carriedOver: 0))
        #expect(machine.allowance == 3)
    }

    @Test func everyReconnectAsksForTheOnlineStatusAgain() {
        var machine = connectedMachine()
        for _ in 0..<3 {
            _ = machine.disconnected(rc: 7)
            #expect(machine.connackReceived(code: 0) == .publishStatus(carriedOver: 0))
        }
    }

    @Test func aRefusedConnectionKeepsTryingAndSendsNothing() {
        var machine = PublisherStateMachine(maxInflight: 3)
        machine.started()
        #expect(machine.connackReceived(code: 5) == .refused)
        #expect(machine.connection == .connecting)
        #expect(machine.allowance == 0)
        #expect(machine.disconnected(rc: 5) == .attemptFailed)
    }

    @Test func stoppingReleasesNothingAndEndsOnOurDisconnect() {
        var machine = connectedMachine()
        machine.published(mid: 1, journalSeq: 1)
        machine.stopRequested()
        #expect(machine.allowance == 0)
        #expect(machine.acknowledged(mid: 1, reasonCode: 0) == .markPublished(journalSeq: 1))
        #expect(machine.disconnected(rc: 0) == .stopped)
        #expect(machine.connection == .disconnected)
    }

    @Test func aReusedMidReplacesTheStaleEntry() {
        var machine = connectedMachine()
        machine.published(mid: 1, journalSeq: 1)
        machine.published(mid: 1, journalSeq: 2)
        #expect(machine.journalInflightCount == 1)
        #expect(machine.acknowledged(mid: 1, reasonCode: 0) == .markPublished(journalSeq: 2))
    }
}
