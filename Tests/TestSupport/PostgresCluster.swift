import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL cluster for tests: `initdb` in a temporary directory and `postgres` on a free loopback port,
/// both run as the `postgres` user (PostgreSQL refuses to run as root), with trust authentication on 127.0.0.1.
/// `kill()` and `start()` keep the directory and the port, so a test can take the database away and bring it back.
public final class PostgresCluster: Sendable {
    public static let binaries = "/usr/lib/postgresql/15/bin"
    public let port: UInt16
    public let directory: URL

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Creates and starts a cluster (about a second).
    public init() throws {
        guard FileManager.default.isExecutableFile(atPath: "\(Self.binaries)/initdb") else {
            throw Failure(description: "PostgreSQL 15 is not installed (scripts/install-dependencies installs it)")
        }
        port = freeLoopbackPort()
        directory = try makeTemporaryDirectory("accessgw-pg")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        let data = directory.appendingPathComponent("data").path
        try Self.asPostgres(["/bin/chown", "-R", "postgres:postgres", directory.path], asRoot: true)
        try Self.asPostgres(["\(Self.binaries)/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                             "--locale=C", "--no-sync"])
        try start()
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }

    private static func asPostgres(_ arguments: [String], asRoot: Bool = false) throws {
        let (status, output) = asRoot
            ? try ChildProcess.runBlocking(arguments[0], Array(arguments.dropFirst()))
            : try ChildProcess.runBlocking("/usr/sbin/runuser", ["-u", "postgres", "--"] + arguments)
        guard status == 0 else { throw Failure(description: "\(arguments.joined(separator: " ")) failed (\(status)):\n\(output)") }
    }

    /// Runs `arguments` as the postgres user with `posix_spawn` and waits for it, output to /dev/null. Not through
    /// `ChildProcess` (Foundation's Process): `pg_ctl start` leaves a daemon behind, and Process then never reports
    /// the exit of runuser (the test hangs with a zombie).
    private static func spawnAsPostgres(_ arguments: [String]) throws {
        let argv = ["/usr/sbin/runuser", "-u", "postgres", "--"] + arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cArguments, environ)
        guard rc == 0 else { throw Failure(description: "cannot run \(argv.joined(separator: " ")): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        guard status == 0 else { throw Failure(description: "\(arguments.joined(separator: " ")) failed (wait status \(status))") }
    }

    private var data: String { directory.appendingPathComponent("data").path }

    /// Starts the server with `pg_ctl start -w` (its output goes to `postgres.log` in the directory, so no pipe of
    /// the test stays open) and returns once it accepts connections.
    public func start() throws {
        try Self.spawnAsPostgres(["\(Self.binaries)/pg_ctl", "-D", data, "-l", directory.appendingPathComponent("postgres.log").path,
                             "-w", "-t", "60", "-o", "-p \(port) -k \(directory.path) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
                             "start"])
    }

    /// The server's log.
    public var log: String { (try? String(contentsOf: directory.appendingPathComponent("postgres.log"), encoding: .utf8)) ?? "" }

    /// The postmaster's process id, from the first line of `postmaster.pid`.
    public var postmasterPID: Int32? {
        let file = directory.appendingPathComponent("data/postmaster.pid").path
        return (try? String(contentsOfFile: file, encoding: .utf8))?.split(separator: "\n").first.flatMap { Int32($0) }
    }

    /// Kills the postmaster and every backend (SIGKILL), as a crash would, and waits until they are gone.
    public func kill() {
        guard let pid = postmasterPID, Glibc.kill(pid, 0) == 0 else { return }
        let backends = ((try? ChildProcess.runBlocking("/usr/bin/pgrep", ["-P", "\(pid)"]))?.output ?? "")
            .split(separator: "\n").compactMap { Int32($0) }
        Glibc.kill(pid, SIGKILL)
        for backend in backends { Glibc.kill(backend, SIGKILL) }
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, ([pid] + backends).contains(where: { Glibc.kill($0, 0) == 0 && !Self.isZombie($0) }) {
            usleep(20_000)
        }
    }

    private static func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(close, offsetBy: 2)] == "Z"
    }

    /// Stops the server (`pg_ctl stop -m fast`).
    public func stop() {
        _ = try? Self.spawnAsPostgres(["\(Self.binaries)/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"])
    }

    /// `postgresql://postgres@127.0.0.1:PORT/NAME`.
    public func url(database: String) -> String { "postgresql://postgres@127.0.0.1:\(port)/\(database)" }

    /// Creates a database.
    public func createDatabase(_ name: String) throws {
        _ = try psql("postgres", "CREATE DATABASE \"\(name)\"")
    }

    /// Runs `sql` with psql and returns its unaligned, tuples-only output (`|` between columns), trimmed.
    @discardableResult
    public func psql(_ database: String, _ sql: String) throws -> String {
        let (status, output) = try ChildProcess.runBlocking("\(Self.binaries)/psql", [
            "-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql,
        ])
        guard status == 0 else { throw Failure(description: "psql: \(sql):\n\(output)") }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
