import Foundation
import Simulators
import Testing
import TestSupport

@Suite("end to end: --version, status exit codes, tail and status on a broken config, backup while writing")
struct FleetOperationsEndToEndTests {
    @Test func versionIsOneConstantInTheCLIAndTheStatus() async throws {
        let version = try await ChildProcess.run(GatewayHarness.binary, ["--version"])
        #expect(version.status == 0)
        let text = version.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(text.split(separator: ".").count == 3 && text.allSatisfy { $0.isNumber || $0 == "." }, "\(text)")

        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        try await harness.start()
        let status = try await eventually("a status snapshot") { () -> [String: Any]? in
            let status = try await harness.statusJSON()
            return (status["status"] as? [String: Any])?["version"] == nil ? nil : status
        }
        #expect((status["status"] as? [String: Any])?["version"] as? String == text)
        let human = try await harness.accessgw(["status", "--journal", harness.journalPath])
        #expect(human.output.contains("(accessgw \(text))"), "\(human.output)")
        await #expect(harness.stop() == 0)
    }

    @Test func statusExits0WhenAllIsUp1WhenADeviceIsDownAnd2WhenTheDaemonDied() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML + """

          - id: door-ghost
            profile: face-door
            bus: lan
            unit: 9
            poll: 50ms
        """)
        try await harness.start()
        // Unit 9 does not exist: it goes offline after three failed polls while door-3e stays online.
        let json = try await eventually("status with only door-ghost down") { () -> [String: Any]? in
            let json = try await harness.statusJSON()
            let broker = (json["status"] as? [String: Any])?["broker"] as? [String: Any]
            return json["devices_down"] as? [String] == ["door-ghost"] && broker?["connected"] as? Bool == true ? json : nil
        }
        #expect(json["exit_code"] as? Int == 1)
        let down = try await harness.accessgw(["status", "--journal", harness.journalPath])
        #expect(down.status == 1 && down.output.contains("offline"), "\(down.output)")

        // Remove the ghost: everything up is exit 0.
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        kill(try #require(harness.gateway).process.processIdentifier, SIGHUP)
        try await waitUntil("status exit 0 after the reload") {
            try await harness.accessgw(["status", "--journal", harness.journalPath]).status == 0
        }

        // SIGKILL: the snapshot is still fresh, but the process is gone; status says so at once.
        harness.crash()
        let dead = try await harness.accessgw(["status", "--journal", harness.journalPath])
        #expect(dead.status == 2, "\(dead.output)")
        #expect(dead.output.contains("daemon NOT RUNNING") && !dead.output.contains(" online "), "\(dead.output)")
    }

    /// Issue 19 item 16: a user who may not read the configuration or the journal was told "does not exist" / "no
    /// journal yet", and `status` exited 1, which a Nagios check reads as "something is down". Now: permission
    /// denied, naming the user and the file, exit 77 (EX_NOPERM).
    @Test func aUserWhoMayNotReadTheConfigurationOrTheJournalIsToldPermissionDenied() async throws {
        let setpriv = SerialPair.executablePath("setpriv")
        guard FileManager.default.isExecutableFile(atPath: setpriv), geteuid() == 0 else {
            print("not root or no setpriv: permission denied is not testable here")
            return
        }
        let base = try makeTemporaryDirectory("accessgw-perm")
        defer { try? FileManager.default.removeItem(at: base) }
        func directory(_ name: String, mode: Int) throws -> String {
            let path = base.appendingPathComponent(name).path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
            return path
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: base.path)
        let closed = try directory("closed", mode: 0o750)   // root:root, as /etc/accessgw or /var/lib/accessgw for another user
        let open = try directory("open", mode: 0o755)
        func config(in folder: String, journal: String) throws -> String {
            let path = folder + "/gateway.yaml"
            try "gateway:\n  id: gw-01\n  site: test\n  journal: \(journal)\n".write(toFile: path, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
            return path
        }
        let hiddenJournal = closed + "/journal.db", privateJournal = open + "/journal.db"
        for journal in [hiddenJournal, privateJournal] {
            #expect(FileManager.default.createFile(atPath: journal, contents: Data(), attributes: [.posixPermissions: 0o640]))
        }
        let cases: [(arguments: [String], file: String, what: String)] = [
            (["status", "--config", try config(in: closed, journal: privateJournal)], closed + "/gateway.yaml", "the configuration"),
            (["status", "--config", try config(in: open, journal: hiddenJournal)], hiddenJournal, "the journal"),
            (["status", "--journal", privateJournal], privateJournal, "the journal"),
            (["tail", "--journal", hiddenJournal], hiddenJournal, "the journal"),
            (["backup", "--journal", privateJournal, base.path + "/copy.db"], privateJournal, "the journal"),
            (["forget", "--card", "123", "--config", open + "/gateway.yaml", "--journal", hiddenJournal], hiddenJournal, "the journal"),
        ]
        for (arguments, file, what) in cases {
            let result = try await ChildProcess.run(setpriv, ["--reuid=nobody", "--regid=nogroup", "--clear-groups", GatewayHarness.binary] + arguments)
            #expect(result.status == 77, "\(arguments): \(result.output)")
            #expect(result.output.contains("permission denied: user nobody may not read \(what) \(file)"), "\(arguments): \(result.output)")
            #expect(!result.output.contains("does not exist") && !result.output.contains("no journal"), "\(arguments): \(result.output)")
        }
        let check = try await ChildProcess.run(setpriv, ["--reuid=nobody", "--regid=nogroup", "--clear-groups", GatewayHarness.binary,
                                                   "check", "--config", closed + "/gateway.yaml"])
        #expect(check.status == 78 && check.output.contains("permission denied: user nobody may not read it"), "\(check.output)")
    }

    @Test func tailAndStatusReadTheJournalOfABrokenConfigAndSayWhatIsBroken() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1)])
        let door = simulator.devices[0]
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        try await harness.start()
        for i in 0..<30 { door.record(code: 1, point: 1, direction: 1, value: UInt32(i), subject: "P-\(i)") }
        try await waitUntil("30 events journalled") { door.logStatus.ack == 30 }
        await #expect(harness.stop() == 0)

        // --since is not capped at -n's default of 20.
        let since = try await harness.accessgw(["tail", "--since", "1h", "--journal", harness.journalPath, "--type", "access.*"])
        #expect(since.output.split(separator: "\n").count == 30, "\(since.output)")
        await #expect(try harness.accessgw(["tail", "--journal", harness.journalPath]).output.split(separator: "\n").count == 20)

        // Break the file: a typo and a password file nobody can read. tail and status still find the journal.
        let broken = try String(contentsOfFile: harness.configPath, encoding: .utf8)
            .replacingOccurrences(of: "    poll: 50ms", with: "    pol: 50ms")
            .replacingOccurrences(of: "  keepalive: 5s", with: "  keepalive: 5s\n  username: gw\n  password_file: \(harness.directory.path)/missing-password")
        try broken.write(toFile: harness.configPath, atomically: true, encoding: .utf8)
        let tail = try await harness.accessgw(["tail", "--config", harness.configPath, "-n", "3"])
        #expect(tail.status == 0, "\(tail.output)")
        #expect(tail.output.contains("warning: \(harness.configPath) has 2 problem(s); reading the journal \(harness.journalPath) anyway"),
                "\(tail.output)")
        #expect(tail.output.contains("devices[0].pol: unknown key") && tail.output.contains("missing-password"), "\(tail.output)")
        #expect(tail.output.contains("P-29"), "\(tail.output)")
        let status = try await harness.accessgw(["status", "--config", harness.configPath])
        #expect(status.status == 2 && status.output.contains("door-3e") && status.output.contains("daemon NOT RUNNING"), "\(status.output)")
    }

    @Test func backupWhileTheDaemonWritesHoldsEveryCommittedEvent() async throws {
        let harness = try GatewayHarness()
        let simulator = try TCPSimulator([SimulatedDevice(kind: .faceDoor, unit: 1, capacity: 5000)])
        let door = simulator.devices[0]
        try harness.configure(buses: simulator.busYAML, devices: doorOnLanYAML)
        try await harness.start()
        let writing = Task.detached {
            var i: UInt32 = 0
            while !Task.isCancelled {
                door.record(code: 1, point: 1, direction: 1, value: i, subject: "P-\(i)")
                i += 1
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        defer { writing.cancel() }
        try await waitUntil("100 events journalled", timeout: .seconds(60)) { door.logStatus.ack >= 100 }
        let committedBefore = Int(door.logStatus.ack)
        let file = harness.directory.appendingPathComponent("backup.db").path
        let backup = try await harness.accessgw(["backup", "--journal", harness.journalPath, file])
        #expect(backup.status == 0, "\(backup.output)")
        #expect(backup.output.hasPrefix("\(file): "), "\(backup.output)")
        writing.cancel()

        // The copy is a standalone database (no -wal beside it) that tail reads, with every event acknowledged
        // to the device before the backup began, and no gap in what it holds.
        let walBytes = (try? FileManager.default.attributesOfItem(atPath: file + "-wal"))?[.size] as? Int ?? 0
        #expect(walBytes == 0, "the backup is one self-contained file")
        let copied = try await harness.accessgw(["tail", "--journal", file, "--json", "--device", "door-3e", "--since", "1d"])
        let seqs = copied.output.split(separator: "\n").compactMap {
            ((try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any])?["data"] as? [String: Any]
        }.compactMap { $0["seq"] as? Int }
        #expect(seqs.count >= committedBefore, "backup holds \(seqs.count) events, \(committedBefore) were committed before it")
        #expect(seqs == Array(1...(seqs.last ?? 0)), "consecutive seqs from 1")
        #expect(backup.output.contains("\(seqs.count) events") || backup.output.contains("events ("), "\(backup.output)")

        let again = try await harness.accessgw(["backup", "--journal", harness.journalPath, file])
        #expect(again.status == 1 && again.output.contains("exists"), "never overwrites: \(again.output)")
        await #expect(harness.stop() == 0)
    }
}
