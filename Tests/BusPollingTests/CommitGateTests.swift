import AccessModel
@testable import BusPolling
import Dispatch
import Testing

/// A command may reach its bus before its claim is committed; the write waits for the commit (SPEC 4.1 rule 7).
@Suite struct CommitGateTests {
    @Test func theWriteWaitsForTheCommitAndNeverGoesOnWithoutIt() {
        let far = ContinuousClock.now + .seconds(60)
        let committed = CommitGate()
        DispatchQueue.global().async { committed.open(committed: true) }
        #expect(committed.wait(until: far) == true)
        #expect(committed.wait(until: far) == true, "asked again, the answer stands")

        let failed = CommitGate()
        failed.open(committed: false)
        #expect(failed.wait(until: far) == false)

        // Never opened: past the deadline there is no answer, and the job is expired rather than written.
        let pending = CommitGate()
        #expect(pending.wait(until: .now + .milliseconds(50)) == nil)
    }
}
