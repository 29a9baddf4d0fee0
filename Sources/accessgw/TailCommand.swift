import AccessModel
import ArgumentParser
import Foundation
import Gateway
import Journal

/// `accessgw tail`: events from the local journal, newest last; works while the broker is down.
struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Print events from the local journal, newest last; -f follows."
    )

    @OptionGroup var journalOptions: JournalOptions
    @Option(name: .short, help: "How many of the newest events to print first (default 20; with --since, all of them).") var n: Int?
    @Flag(name: .short, help: "Follow: keep printing new events as they are journalled.") var f = false
    @Option(help: "Only this device (repeatable).") var device: [String] = []
    @Option(help: "Only types matching this glob, e.g. 'access.*' (repeatable).") var type: [String] = []
    @Option(help: "Only events recorded within this duration, e.g. 10m.") var since: String?
    @Flag(help: "One CloudEvents JSON object per line.") var json = false

    func run() async throws {
        let types = try type.map { text in
            guard let pattern = NamePattern(text) else { throw ValidationError("--type '\(text)' is not a type glob (examples: access.*, door.opened)") }
            return pattern
        }
        var filter = JournalFilter(limit: n ?? (since == nil ? 20 : nil), devices: device, types: types)
        if let since {
            guard let millis = DurationText.milliseconds(since) else { throw ValidationError("--since '\(since)' is not a duration (examples: 30s, 10m, 2h)") }
            filter.since = Timestamp(millisecondsSinceEpoch: Timestamp.now.millisecondsSinceEpoch - millis)
        }
        let reader = try journalOptions.openReader()
        let colour = isatty(STDOUT_FILENO) == 1
        var last = try reader.latestJournalSeq()
        let initial = try reader.events(filter: filter)
        for event in initial { emit(event, colour: colour) }
        last = max(last, initial.last?.journalSeq ?? 0)
        guard f else { return }
        filter.limit = 500
        while !Task.isCancelled {
            filter.afterJournalSeq = last
            let events = try reader.events(filter: filter)
            for event in events { emit(event, colour: colour) }
            if let newest = events.last?.journalSeq { last = newest } else { try await Task.sleep(for: .milliseconds(100)) }
        }
    }

    func emit(_ event: StoredEvent, colour: Bool) {
        let line = json ? TerminalText.jsonEscaped(event.payload) : EventLine.render(event, colour: colour)
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}

/// Where `tail` and `status` find the journal: `--journal`, or the configuration's `gateway.journal`.
struct JournalOptions: ParsableArguments {
    @Option(help: "Configuration file (for gateway.journal).") var config = GatewayConfiguration.defaultPath
    @Option(help: "Journal database, instead of the configuration's gateway.journal.") var journal: String?

    /// `--journal`, or the configuration's `gateway.journal`. A configuration with errors elsewhere (or an unreadable
    /// secret) still names its journal: the problems are printed as a warning and the journal is read anyway.
    func path() throws -> String {
        if let journal { return journal }
        if let denied = PermissionFailure.reading(config, what: "the configuration") { throw denied }
        let (path, problems) = GatewayConfiguration.journalPath(configFile: config)
        if let problems {
            let shown = problems.problems.prefix(5).map { "  \($0)" }
            let more = problems.problems.count > 5 ? ["  … and \(problems.problems.count - 5) more (accessgw check lists them all)"] : []
            AccessGateway.printError((["warning: \(config) has \(problems.problems.count) problem(s); reading the journal \(path) anyway:"]
                                      + shown + more).joined(separator: "\n"))
        }
        return path
    }

    /// The journal's path, which must exist.
    func existingPath() throws -> String {
        let path = try path()
        // A journal in a directory this user may not enter looks missing to a stat: ask open, which says EACCES.
        if let denied = PermissionFailure.reading(path, what: "the journal") { throw denied }
        guard FileManager.default.fileExists(atPath: path) else {
            throw CommandFailure("no journal at \(path) yet: has accessgw run started with this configuration?")
        }
        return path
    }

    func openReader() throws -> JournalReader {
        let path = try existingPath()
        do { return try JournalReader(path: path) } catch { throw CommandFailure("cannot open the journal \(path): \(error)") }
    }
}
