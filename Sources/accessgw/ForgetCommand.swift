import ArgumentParser
import Foundation
import Gateway
import Journal

/// `accessgw forget --person ID | --card N | --plate P`: deletes one resident's events from the journal (a resident
/// who moves out or withdraws consent, PIPL art. 47), safe while the daemon runs.
struct ForgetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forget",
        abstract: "Delete every journalled event of one person, card or plate (plain, pseudonymised and masked forms).",
        discussion: """
            Matches the identifier as it is, its pseudonyms under the configured privacy key (k<version>:… and the \
            older unprefixed form) and, for a plate, its masked form (which plates sharing the province and last two \
            characters share too). The daemon journals and publishes a gateway.data_erased event with the kind of \
            identifier and the count, never the identifier. Events already delivered to the broker's subscribers are \
            beyond the gateway's reach.
            """
    )

    @Option(help: "A person id, as the devices report it.") var person: String?
    @Option(help: "A card number.") var card: String?
    @Option(help: "A licence plate, such as 云A12345.") var plate: String?
    @OptionGroup var journalOptions: JournalOptions

    func validate() throws {
        let given = [person, card, plate].compactMap { $0 }
        guard given.count == 1 else { throw ValidationError("give exactly one of --person, --card and --plate") }
        guard !given[0].isEmpty else { throw ValidationError("the identifier is empty") }
    }

    func run() throws {
        let privacy: GatewayConfiguration.Privacy
        let path: String
        do {
            let configuration = try GatewayConfiguration.load(path: journalOptions.config)
            privacy = configuration.privacy
            path = journalOptions.journal ?? configuration.journalPath
        } catch {
            // Without the configuration there is no key: only the plain (and masked) forms can be matched.
            guard let journal = journalOptions.journal else {
                throw CommandFailure("cannot read \(journalOptions.config) for the privacy key and the journal: \(error)")
            }
            AccessGateway.printError("warning: \(journalOptions.config) could not be read (\(error.problems.first.map { "\($0)" } ?? "")); "
                                     + "matching the plain and masked forms only, not pseudonyms")
            privacy = GatewayConfiguration.Privacy()
            path = journal
        }
        let filter = PrivacyFilter(privacy)
        let request = if let person { filter.erasure(person: person) } else if let card { filter.erasure(card: card) }
            else { filter.erasure(plate: plate!) }
        if let denied = PermissionFailure.reading(path, what: "the journal") { throw denied }
        guard FileManager.default.fileExists(atPath: path) else { throw CommandFailure("no journal at \(path)") }
        do {
            let count = try Journal.erase(path: path, request: request)
            let forms = filter.knowsPseudonyms ? "plain and pseudonymised" + (plate == nil ? "" : " and masked") : "plain" + (plate == nil ? "" : " and masked")
            print("deleted \(count) event(s) of this \(request.kind) (\(forms) forms) from \(path); "
                  + "the daemon journals and publishes gateway.data_erased with the count (within a second while it runs, else at its next start)")
        } catch {
            throw CommandFailure("forget failed on \(path): \(error)")
        }
    }
}
