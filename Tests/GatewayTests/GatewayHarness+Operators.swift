import Foundation
import Simulators
import TestSupport

/// An RS-485 bus for end-to-end tests: a socat pseudo-terminal pair with the simulators on one end and the
/// gateway's bus on the other, stopped when released.
final class RTUSimulator: @unchecked Sendable {
    // @unchecked: the server and the pair are themselves thread-safe; this wrapper is driven by one test.
    let pair: SerialPair
    let server: ModbusRTUServer
    let devices: [SimulatedDevice]

    /// `paced`: replies leave when a real line at `baud` would have carried them (request, gap, latency, reply).
    init(_ devices: [SimulatedDevice], baud: Int = 9600, paced: Bool = false) async throws {
        self.devices = devices
        pair = try await SerialPair.start()
        server = ModbusRTUServer(path: pair.deviceEnd, settings: SerialLineSettings(baud: baud, pace: paced), devices: devices)
        try server.start()
    }

    deinit {
        server.stop()
        pair.stop()
    }

    /// The bus entry of a gateway configuration for this line.
    func busYAML(id: String = "b3-rs485", timeout: String = "200ms", turnaround: String = "5ms") -> String {
        """
          - id: \(id)
            rtu: { device: \(pair.masterEnd), baud: 9600, parity: N, data_bits: 8, stop_bits: 1 }
            timeout: \(timeout)
            turnaround: \(turnaround)
        """
    }
}

extension GatewayHarness {
    /// The CloudEvents `accessgw tail --json` prints for this harness's journal, with extra `arguments`.
    func journalEvents(_ arguments: [String] = []) async throws -> [[String: Any]] {
        let (status, output) = try await accessgw(["tail", "--journal", journalPath, "--json"] + arguments)
        guard status == 0 else { throw TailFailed(output: output) }
        for line in output.split(separator: "\n") {
            let type = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["type"] as? String ?? "?"
            PayloadValidator.shared.expectValid(topic: "accessgw/tail/json/event/\(type)", payload: String(line))
        }
        return output.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
    }

    /// `accessgw status --journal … --json`, parsed (its exit status is also in `exit_code`).
    func statusJSON() async throws -> [String: Any] {
        let (status, output) = try await accessgw(["status", "--journal", journalPath, "--json"])
        guard [0, 1, 2].contains(status), let object = (try? JSONSerialization.jsonObject(with: Data(output.utf8))) as? [String: Any]
        else { throw TailFailed(output: output) }
        return object
    }

    /// The lines of the daemon's log that contain `text`.
    func logLines(containing text: String) -> [String] {
        log.split(separator: "\n").map(String.init).filter { $0.contains(text) }
    }

    struct TailFailed: Error, CustomStringConvertible {
        var output: String
        var description: String { "accessgw tail/status failed: \(output)" }
    }
}

extension ReceivedEvent {
    var boot: Int? { data["boot"] as? Int }
    var lost: [String: Int]? { data["lost"] as? [String: Int] }
}
