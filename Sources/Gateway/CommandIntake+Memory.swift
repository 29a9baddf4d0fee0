import AccessModel
import Atomics
import Dispatch
import Journal
import RequestAuthority

/// Rule 7 of SPEC 4.1 as pure functions, and the watch over the command id memory (`JOURNAL.commands`).
extension CommandIntake {
    /// A request id is the issuer's own: ids of different issuers never collide.
    struct RequestKey: Hashable, Sendable {
        var issuer: String
        var id: String
    }

    /// `args` as the id memory keeps them: a JSON object with its keys sorted, so that key order and spacing
    /// do not make a redelivery look like another request.
    static func canonical(_ args: [(String, JSONValue)]) -> String {
        var bytes: [UInt8] = []
        JSONValue.object(args.sorted { $0.0 < $1.0 }).write(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Rule 7: an id its issuer used before is the same request again only for the same device, command and
    /// arguments (unknown arguments, of an id taken over from an older journal, count as the same); anything else
    /// is `rejected` (`id_reused`), never written.
    static func isSameRequest(_ first: CommandRequestRecord, device: String, command: String, args: String) -> Bool {
        first.device == device && first.command == command && (first.args == nil || first.args == args)
    }

    /// A new or lost id memory: no command is written until `max_ttl` has passed, so that every request written
    /// with the lost ids is past its deadline (rule 6) before anything is written again.
    func memoryLost(_ why: String) {
        let maxTTL = section.withLock { $0.commands.maxTTLMillis }
        memoryGap.withLock { $0.refuse(for: .milliseconds(maxTTL), from: .now) }
        logger.critical("\(why); writing no command for max_ttl (\(maxTTL / 1000) s)")
    }

    /// One `stat`: whether `JOURNAL.commands` is still the file the store writes. Called before every claim
    /// and every second (`watchMemory`), like the journal's custody check.
    func checkMemory() {
        // Once set aside, the path stays empty (or holds a file this daemon never opened) until the next start.
        guard !memoryLossNoticed.load(ordering: .relaxed) else { return }
        let state = journal.commandMemoryState()
        guard state != .inPlace else { return }
        memoryLossNoticed.store(true, ordering: .relaxed)
        let aside = journal.setAsideCommandMemory(state)
        let what = state == .missing ? "was deleted" : "was replaced by another file\(aside.map { " (moved to \($0))" } ?? "")"
        memoryLost("command id memory \(journal.commandClaimsPath) \(what) while running: its ids stay remembered until the daemon stops, and the next start waits out max_ttl again")
    }

    /// Checks the id memory every second on the intake's queue, for as long as the intake lives.
    func watchMemory() {
        queue.asyncAfter(deadline: .now() + .seconds(1)) { [weak self] in
            guard let self else { return }
            checkMemory()
            watchMemory()
        }
    }
}

/// Until when commands are refused after the id memory was found new or lost: pure, tested without a journal.
struct CommandMemoryGap: Sendable {
    private(set) var until: ContinuousClock.Instant?

    /// Refuses commands for `duration` from `now` (a later loss extends the gap, never shortens it).
    mutating func refuse(for duration: Duration, from now: ContinuousClock.Instant) {
        let end = now + duration
        until = max(until ?? end, end)
    }

    /// The end of the gap while `now` is in it, else nil.
    func refusing(at now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        guard let until, now < until else { return nil }
        return until
    }
}
