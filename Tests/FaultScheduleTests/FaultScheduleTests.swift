import AccessModel
import FaultSchedules
import Foundation
import Testing

/// Seeded fault schedules (issue 7): thousands of random interleavings of device events, gateway crashes, refused
/// acks, timeouts, misrouted replies, reboots, overflows, broker disconnects, denials and duplicate deliveries,
/// with the delivery guarantees checked after every step. A failing seed is printed with the command replaying it.
@Suite("fault schedules")
struct FaultScheduleTests {
    /// Every fault.
    static let strictFaults = ScheduleFaults.all

    /// Runs `count` schedules from seed `first` on (or only `ACCESSGW_SCHEDULE_SEED` when set) and returns the
    /// first violation with its replay command.
    ///
    /// Thousands of schedules are seconds of CPU: they run on a thread of their own. On the cooperative pool (two
    /// threads on a 2-core machine) several of them at once starved every async test of the run for 20 s and more,
    /// and tests waiting on a deadline failed (seen twice in 6 full runs).
    static func firstViolation(faults: ScheduleFaults, count: Int, first: UInt64 = 1, mutation: FaultSchedule.Mutation? = nil,
                               test: String) async -> String? {
        await onDedicatedThread { firstViolationHere(faults: faults, count: count, first: first, mutation: mutation, test: test) }
    }

    private static func firstViolationHere(faults: ScheduleFaults, count: Int, first: UInt64, mutation: FaultSchedule.Mutation?,
                                           test: String) -> String? {
        let environment = ProcessInfo.processInfo.environment
        let replay = environment["ACCESSGW_SCHEDULE_SEED"].flatMap(UInt64.init)
        let base = environment["ACCESSGW_SCHEDULE_BASE"].flatMap(UInt64.init) ?? first
        let total = environment["ACCESSGW_SCHEDULE_COUNT"].flatMap(Int.init) ?? count
        let seeds = replay.map { $0...$0 } ?? base...(base + UInt64(total) - 1)
        // ACCESSGW_SCHEDULE_SURVEY=1: run every seed and print how many fail with each kind of violation.
        let survey = environment["ACCESSGW_SCHEDULE_SURVEY"] != nil
        var kinds: [String: (count: Int, first: UInt64)] = [:]
        defer {
            if survey {
                print("\(test): \(kinds.values.reduce(0) { $0 + $1.count }) of \(seeds.count) schedules failed")
                for (kind, found) in kinds.sorted(by: { $0.value.count > $1.value.count }) {
                    print("  \(found.count)× \(kind) (first seed \(found.first))")
                }
            }
        }
        for seed in seeds {
            var schedule = FaultSchedule(seed: seed, faults: faults, mutation: mutation)
            schedule.verbose = replay != nil
            do {
                try schedule.run()
                if replay != nil { print("seed \(seed) passed: \(schedule.shape)\n  " + schedule.fullTrace.joined(separator: "\n  ")) }
            } catch {
                if survey {
                    let kind = String(error.message.prefix { $0 != ":" })
                    kinds[kind, default: (0, seed)].count += 1
                    continue
                }
                if replay != nil { print("seed \(seed): \(schedule.shape)\n  " + schedule.fullTrace.joined(separator: "\n  ")) }
                return "\(error)\n  schedule: \(schedule.shape)\n  replay: ACCESSGW_SCHEDULE_SEED=\(seed) swift test --filter 'FaultScheduleTests.*\(test)'"
            }
        }
        return nil
    }

    @Test func tenThousandSchedulesKeepTheDeliveryGuarantees() async {
        if let violation = await Self.firstViolation(faults: Self.strictFaults, count: 10_000, test: "tenThousandSchedules") {
            Issue.record("\(violation)")
        }
    }

    // The findings of issue 7 the schedules catch (first failing seeds before the fixes: 32, 1, 1, in
    // `ACCESSGW_SCHEDULE_SURVEY=1` runs); all three are fixed, so these are strict, and the 10,000 include them.

    @Test func refusedAckNeverStopsADevice() async {
        if let violation = await Self.firstViolation(faults: Self.strictFaults.union(.refusedAcks), count: 2_000, test: "refusedAckNeverStopsADevice") {
            Issue.record("\(violation)")
        }
    }

    @Test func windowGapIsNotTakenForLoss() async {
        if let violation = await Self.firstViolation(faults: Self.strictFaults.union(.windowGaps), count: 2_000, test: "windowGapIsNotTakenForLoss") {
            Issue.record("\(violation)")
        }
    }

    @Test func deniedPublicationNeverStallsTheQueue() async {
        if let violation = await Self.firstViolation(faults: [.deniedPublications, .disconnects, .gatewayCrashes], count: 2_000,
                                               test: "deniedPublicationNeverStallsTheQueue") {
            Issue.record("\(violation)")
        }
    }

    // Found by the schedules themselves, fixed by starting a restarted reader from the journal's device cursor
    // (`EventLogStateMachine.resume`); the 10,000 include them, these run more crashes.

    @Test func aLossIsReportedOnceAndSurvivesACrash() async {
        if let violation = await Self.firstViolation(faults: Self.strictFaults, count: 2_000, first: 20_001, test: "aLossIsReportedOnceAndSurvivesACrash") {
            Issue.record("\(violation)")
        }
    }

    /// Before the fix: a crash between committing `gateway.events_lost` and the ack made the restarted gateway report
    /// the same loss again under a new id; a loss seen only after the device's ack passed it lived in memory until
    /// committed, so a crash in between hid it.
    @Test(arguments: ["one id per event", "loss always reported"])
    func readersIgnoringTheJournalReportALossTwiceOrNever(invariant: String) async throws {
        let found = await onDedicatedThread { () -> String? in
            var found: String?
            for first in stride(from: UInt64(1), to: 20_001, by: 2_000) where found == nil {
                found = Self.survey(faults: Self.strictFaults, count: 2_000, first: first, mutation: .readersIgnoreTheJournal)
                    .first { $0.contains(invariant) }
            }
            return found
        }
        #expect(found != nil, "no schedule showed \(invariant) without the journal's device cursor")
    }

    /// The violations of `count` schedules from `first`, one per failing seed.
    static func survey(faults: ScheduleFaults, count: Int, first: UInt64, mutation: FaultSchedule.Mutation?) -> [String] {
        (first..<(first + UInt64(count))).compactMap { seed in
            var schedule = FaultSchedule(seed: seed, faults: faults, mutation: mutation)
            do throws(FaultSchedule.Violation) { try schedule.run() } catch { return error.message }
            return nil
        }
    }

    // The harness itself.

    @Test func aSeedReplaysTheSameSchedule() throws {
        var first = FaultSchedule(seed: 42, faults: .all)
        var second = FaultSchedule(seed: 42, faults: .all)
        let a = Result { try first.run() }.map { "passed" }
        let b = Result { try second.run() }.map { "passed" }
        #expect(first.fullTrace == second.fullTrace)
        #expect(first.fullTrace.count > 60)
        #expect("\(a)" == "\(b)")
    }

    @Test(arguments: [
        (FaultSchedule.Mutation.marksPostedBeforeCommit, "no ack before commit"),
        (.lossReportsDropped, "loss always reported"),
        (.pubacksNeverMarked, "nothing may be stuck"),
        (.outOfOrderMarksDropped, "nothing may be stuck"),
    ])
    func eachInvariantCatchesItsDefect(mutation: FaultSchedule.Mutation, invariant: String) async throws {
        let violation = try #require(await Self.firstViolation(faults: Self.strictFaults, count: 2_000, mutation: mutation,
                                                          test: "eachInvariantCatchesItsDefect"))
        #expect(violation.contains(invariant), "\(violation)")
    }
}
