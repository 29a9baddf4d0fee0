import AccessModel
import Yams

/// Typed access to YAML nodes for the simulator config, each failure naming file:line and the key.
struct ConfigReader {
    let file: String

    func error(_ node: Node, _ message: String) -> SimulatorConfigError {
        SimulatorConfigError(file: file, line: node.mark?.line ?? 0, message)
    }

    /// The mapping's entries; a key outside `allowed` is an error at its own line.
    func mapping(_ node: Node, _ what: String, allowed: Set<String>) throws(SimulatorConfigError) -> [String: Node] {
        guard case let .mapping(mapping) = node else { throw error(node, "\(what) must be a mapping") }
        var result: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.string, allowed.contains(name) else {
                let known = allowed.sorted().joined(separator: ", ")
                throw error(key, "unknown key '\(key.string ?? "?")' in \(what) (known: \(known))")
            }
            result[name] = value
        }
        return result
    }

    func string(_ node: Node, _ key: String) throws(SimulatorConfigError) -> String {
        guard case let .scalar(scalar) = node else { throw error(node, "'\(key)' must be a plain value") }
        return scalar.string
    }

    func integer(_ node: Node, _ key: String, in range: ClosedRange<Int>) throws(SimulatorConfigError) -> Int {
        guard let value = node.int, range.contains(value) else {
            throw error(node, "'\(key)' must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    func bool(_ node: Node, _ key: String) throws(SimulatorConfigError) -> Bool {
        guard let value = node.bool else { throw error(node, "'\(key)' must be true or false") }
        return value
    }

    /// A probability 0–1; `true`/`false` mean 1/0.
    func probability(_ node: Node, _ key: String) throws(SimulatorConfigError) -> Double {
        if let flag = node.bool { return flag ? 1 : 0 }
        guard let value = node.float, (0...1).contains(value) else {
            throw error(node, "'\(key)' must be a probability between 0 and 1, or true/false")
        }
        return value
    }

    /// Milliseconds of a duration such as `200ms` or `5s`; a leading `-` is allowed when `signed`.
    func milliseconds(_ node: Node, _ key: String, signed: Bool = false) throws(SimulatorConfigError) -> Int64 {
        let text = try string(node, key)
        let negative = signed && text.hasPrefix("-")
        guard let ms = DurationText.milliseconds(negative ? String(text.dropFirst()) : text) else {
            throw error(node, "'\(key)' must be a duration such as 200ms, 5s or 10m, not '\(text)'")
        }
        return negative ? -ms : ms
    }

    /// Events per second from `5`, `5/s`, `300/m` or `2.5/s`.
    func rate(_ node: Node, _ key: String) throws(SimulatorConfigError) -> Double {
        let text = try string(node, key)
        let parts = text.split(separator: "/", maxSplits: 1)
        let per: Double? = parts.count == 1 ? 1 : ["s": 1, "m": 60, "h": 3600][String(parts[1])]
        guard let per, let count = Double(parts[0]), count >= 0 else {
            throw error(node, "'\(key)' must be events per time such as 5/s or 300/m, not '\(text)'")
        }
        return count / per
    }
}
