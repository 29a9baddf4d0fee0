import AccessModel
import Foundation
import Yams

/// Reads a simulator config file (YAML); unknown keys and bad values are errors naming file:line and key.
extension SimulatorConfig {
    /// Loads and validates the file at `path`.
    public static func load(path: String) throws(SimulatorConfigError) -> SimulatorConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SimulatorConfigError(file: path, line: 0, "cannot read the file")
        }
        return try parse(yaml: String(decoding: data, as: UTF8.self), file: path)
    }

    /// Parses YAML text; `file` names it in errors.
    public static func parse(yaml: String, file: String) throws(SimulatorConfigError) -> SimulatorConfig {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw SimulatorConfigError(file: file, line: 0, "the file is empty")
            }
            root = node
        } catch let error as SimulatorConfigError {
            throw error
        } catch let error as YamlError {
            throw SimulatorConfigError(file: file, line: Self.line(of: error), "invalid YAML: \(Self.problem(of: error))")
        } catch {
            throw SimulatorConfigError(file: file, line: 0, "invalid YAML: \(error)")
        }
        let reader = ConfigReader(file: file)
        let top = try reader.mapping(root, "the top level", allowed: ["seed", "devices"])
        var config = SimulatorConfig(devices: [])
        if let seed = top["seed"] { config.seed = UInt64(try reader.integer(seed, "seed", in: 0...Int.max)) }
        guard let list = top["devices"] else { throw reader.error(root, "missing key 'devices'") }
        guard case let .sequence(items) = list, !items.isEmpty else {
            throw reader.error(list, "'devices' must be a non-empty list")
        }
        for item in items { config.devices.append(try reader.device(item)) }
        try reader.checkShared(config.devices)
        return config
    }

    private static func line(of error: YamlError) -> Int {
        switch error {
        case let .scanner(_, _, mark, _), let .parser(_, _, mark, _), let .composer(_, _, mark, _): mark.line
        default: 0
        }
    }

    private static func problem(of error: YamlError) -> String {
        switch error {
        case let .scanner(_, problem, _, _), let .parser(_, problem, _, _), let .composer(_, problem, _, _): problem
        default: "\(error)"
        }
    }
}
