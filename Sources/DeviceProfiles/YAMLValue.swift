import AccessModel
import CYaml
import Foundation
import Yams

/// A node of a YAML file that knows where it is (file, line, key path), with typed accessors that
/// report a located problem instead of throwing.
public struct YAMLValue {
    public let node: Node
    public let file: String
    public let path: String

    public var line: Int { node.mark?.line ?? 1 }

    /// Parses `path`; a syntax error or an unreadable file becomes a problem and nil.
    public static func load(path: String, log: ProblemLog) -> YAMLValue? {
        guard let data = FileManager.default.contents(atPath: path) else {
            log.report(path, 0, "", unreadableReason(path))
            return nil
        }
        guard let text = String(data: data, encoding: .utf8) else {
            log.report(path, 0, "", "the file is not UTF-8 text")
            return nil
        }
        return parse(text, file: path, log: log)
    }

    /// Why `path` cannot be read, from the error of opening it: a file in a directory the user may not enter is
    /// "permission denied", not "does not exist" (what a stat that fails with EACCES looks like).
    public static func unreadableReason(_ path: String) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        let code = errno
        if fd >= 0 {
            close(fd)
            return "cannot be read (is it a directory?)"
        }
        switch code {
        case ENOENT, ENOTDIR: return "does not exist"
        case EACCES, EPERM: return "permission denied: \(effectiveUserName()) may not read it"
        default: return "cannot be read: \(String(cString: strerror(code)))"
        }
    }

    /// The name of the user this process runs as, or its uid.
    public static func effectiveUserName() -> String {
        let uid = geteuid()
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "uid \(uid)" }
        return "user " + String(cString: name)
    }

    public static func parse(_ text: String, file: String, log: ProblemLog) -> YAMLValue? {
        if let (line, nodes) = aliasExpansionOverLimit(text) {
            log.report(file, line, "", "YAML aliases expand the file past \(nodes) nodes; refused (is it a \"billion laughs\"?)")
            return nil
        }
        do {
            // `.basic`: no tag resolution. Every scalar is read as text and converted by the accessors below; Yams'
            // default resolver would run up to seven regular expressions (NSRegularExpression) on every mapping key
            // only to hash it for its duplicate-key check, most of the time a load took. `.utf8` is what Yams picks for a
            // native String anyway, without reading the environment on every parse.
            guard let node = try Yams.compose(yaml: text, .basic, .default, .utf8) else {
                log.report(file, 1, "", "the file is empty")
                return nil
            }
            return YAMLValue(node: node, file: file, path: "")
        } catch let error as YamlError {
            switch error {
            case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
                log.report(file, mark.line, "", "YAML syntax: \(problem)")
            case let .duplicatedKeysInMapping(duplicates, context):
                // Yams' own description quotes the whole file as its context: secrets and all, on every line of output.
                let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
                log.report(file, context.mark.line, "", "duplicate key \(keys) in one mapping (first written on this line)")
            default:
                log.report(file, 1, "", "YAML syntax: \(error)")
            }
            return nil
        } catch {
            log.report(file, 1, "", "YAML syntax: \(error)")
            return nil
        }
    }

    /// The most nodes a file may have once every alias is expanded: a few thousand devices take a few ten thousand.
    static let expandedNodeLimit = 200_000

    /// The line of the first alias that takes the file past `limit` nodes when expanded, read from libyaml's events
    /// before anything is composed: a few nested aliases (a "billion laughs") would otherwise grow a kilobyte file
    /// into gigabytes, and an alias used as a mapping key is expanded by hashing it. Nil when within the limit or
    /// when the text does not parse (Yams then reports the syntax error with its line).
    static func aliasExpansionOverLimit(_ text: String, limit: Int = expandedNodeLimit) -> (line: Int, nodes: Int)? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { buffer -> (line: Int, nodes: Int)? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var expandedSize: [String: Int] = [:]
            var open: [(anchor: String?, start: Int)] = []
            var nodes = 0
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                func name(_ anchor: UnsafeMutablePointer<yaml_char_t>?) -> String? {
                    anchor.map { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
                }
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return nil
                case YAML_SCALAR_EVENT:
                    nodes += 1
                    if let anchor = name(event.data.scalar.anchor) { expandedSize[anchor] = 1 }
                case YAML_SEQUENCE_START_EVENT:
                    open.append((name(event.data.sequence_start.anchor), nodes))
                    nodes += 1
                case YAML_MAPPING_START_EVENT:
                    open.append((name(event.data.mapping_start.anchor), nodes))
                    nodes += 1
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    if let (anchor, start) = open.popLast(), let anchor { expandedSize[anchor] = nodes - start }
                case YAML_ALIAS_EVENT:
                    let size = name(event.data.alias.anchor).flatMap { expandedSize[$0] } ?? 1
                    let (sum, overflow) = nodes.addingReportingOverflow(size)
                    nodes = overflow ? Int.max : sum
                default:
                    break
                }
                if nodes > limit { return (Int(event.start_mark.line) + 1, limit) }
            }
        }
    }

    func child(_ node: Node, key: String) -> YAMLValue {
        YAMLValue(node: node, file: file, path: path.isEmpty ? key : "\(path).\(key)")
    }

    /// The entries of a mapping, in file order; keys outside `allowed` are reported as unknown.
    public func mapping(_ log: ProblemLog, allowed: [String]? = nil) -> YAMLMapping? {
        guard case let .mapping(mapping) = node else {
            log.report(at: self, "expected a mapping of keys to values")
            return nil
        }
        var entries: [(String, YAMLValue)] = []
        for (keyNode, valueNode) in mapping {
            let key = keyNode.scalar?.string ?? "\(keyNode)"
            let value = child(valueNode, key: key)
            if entries.contains(where: { $0.0 == key }) {
                log.report(file, keyNode.mark?.line ?? line, value.path, "duplicate key")
                continue
            }
            if let allowed, !allowed.contains(key) {
                let hint = typoOf(key, in: allowed).map { " (did you mean '\($0)'?)" } ?? ""
                log.report(file, keyNode.mark?.line ?? line, value.path, "unknown key\(hint)")
                continue
            }
            entries.append((key, value))
        }
        return YAMLMapping(owner: self, entries: entries)
    }

    public func sequence(_ log: ProblemLog) -> [YAMLValue]? {
        guard case let .sequence(sequence) = node else {
            log.report(at: self, "expected a list")
            return nil
        }
        return sequence.enumerated().map { index, node in
            YAMLValue(node: node, file: file, path: "\(path)[\(index)]")
        }
    }

    /// The scalar's text, or nil (reported) for a mapping or list.
    public func string(_ log: ProblemLog) -> String? {
        guard case let .scalar(scalar) = node else {
            log.report(at: self, "expected a single value")
            return nil
        }
        return scalar.string
    }

    /// The whole number a profile writes as `text`: decimal, or hexadecimal after `0x`.
    public static func wholeNumber(_ text: String) -> Int64? {
        text.hasPrefix("0x") ? Int64(text.dropFirst(2), radix: 16) : Int64(text)
    }

    /// A whole number within `range`; `0x` hexadecimal is accepted.
    public func int(_ log: ProblemLog, in range: ClosedRange<Int64> = Int64.min...Int64.max) -> Int64? {
        guard let text = string(log) else { return nil }
        guard let value = Self.wholeNumber(text) else {
            log.report(at: self, "expected a whole number, found '\(text)'")
            return nil
        }
        guard range.contains(value) else {
            log.report(at: self, "\(value) is out of range \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        return value
    }

    public func double(_ log: ProblemLog) -> Double? {
        guard let text = string(log) else { return nil }
        guard let value = Double(text), value.isFinite else {
            log.report(at: self, "expected a number, found '\(text)'")
            return nil
        }
        return value
    }

    public func bool(_ log: ProblemLog) -> Bool? {
        guard let text = string(log) else { return nil }
        guard let value = Self.truth(text) else {
            log.report(at: self, "expected true or false, found '\(text)'")
            return nil
        }
        return value
    }

    private static func truth(_ text: String) -> Bool? {
        switch text {
        case "true", "yes", "on": true
        case "false", "no", "off": false
        default: nil
        }
    }

    /// A probability from 0 to 1; `true` and `false` mean always (1) and never (0).
    public func probability(_ log: ProblemLog) -> Double? {
        guard let text = string(log) else { return nil }
        if let always = Self.truth(text) { return always ? 1 : 0 }
        guard let value = Double(text), (0...1).contains(value) else {
            log.report(at: self, "expected a probability from 0 to 1 or true/false, found '\(text)'")
            return nil
        }
        return value
    }

    /// A duration such as `200ms`, `5s`, `10m`, `7d`, in milliseconds; when `signed`, `-45s` is allowed too.
    /// A duration in milliseconds; outside `range` (when given) it is a problem naming the allowed span.
    public func milliseconds(_ log: ProblemLog, signed: Bool = false, in range: ClosedRange<Int64>? = nil) -> Int64? {
        guard let text = string(log) else { return nil }
        let negative = signed && text.hasPrefix("-")
        guard let ms = DurationText.milliseconds(negative ? String(text.dropFirst()) : text) else {
            let examples = signed ? "-45s, 200ms, 5s, 10m" : "200ms, 5s, 10m, 7d"
            let tooLong = text.last.map { "smhd".contains($0) } == true && text.dropLast().allSatisfy(\.isNumber)
            log.report(at: self, tooLong ? "'\(text)' is far too long a duration" : "'\(text)' is not a duration (examples: \(examples))")
            return nil
        }
        let value = negative ? -ms : ms
        if let range, !range.contains(value) {
            log.report(at: self, "'\(text)' is out of range \(DurationText.format(milliseconds: range.lowerBound))"
                       + "...\(DurationText.format(milliseconds: range.upperBound))")
            return nil
        }
        return value
    }

    /// A rate such as `5/s`, `300/m`, `2/h` or a bare `5` (per second), in events per second.
    public func perSecond(_ log: ProblemLog) -> Double? {
        guard let text = string(log) else { return nil }
        guard let rate = RateText.perSecond(text) else {
            log.report(at: self, "'\(text)' is not a rate (examples: 5/s, 300/m, 2/h)")
            return nil
        }
        return rate
    }

    /// One of a closed set of words.
    public func choice<T: RawRepresentable & CaseIterable>(_ log: ProblemLog, _: T.Type = T.self) -> T? where T.RawValue == String {
        guard let text = string(log) else { return nil }
        guard let value = T(rawValue: text) else {
            log.report(at: self, "'\(text)' is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        return value
    }
}

/// The key-value entries of a YAML mapping, in file order.
public struct YAMLMapping {
    public let owner: YAMLValue
    public let entries: [(key: String, value: YAMLValue)]

    public subscript(key: String) -> YAMLValue? {
        entries.first { $0.key == key }?.value
    }

    /// The value of `key`, reporting its absence.
    public func required(_ key: String, _ log: ProblemLog) -> YAMLValue? {
        if let value = self[key] { return value }
        log.report(owner.file, owner.line, owner.path.isEmpty ? key : "\(owner.path).\(key)", "missing required key")
        return nil
    }
}

/// The entry of `allowed` that `key` is a typo of: the nearest within 2 edits, the first of equally near ones.
/// Only keys within 2 characters of its length are compared (the distance is at least the difference in length):
/// an unknown key kilobytes long no longer costs a table of its length times each allowed key's (a fifth of the
/// configuration fuzzer's time went there).
private func typoOf(_ key: String, in allowed: [String]) -> String? {
    let length = key.count
    var nearest: (key: String, distance: Int)?
    for candidate in allowed where abs(candidate.count - length) <= 2 {
        let distance = editDistance(candidate, key)
        if distance <= 2, distance < nearest?.distance ?? 3 { nearest = (candidate, distance) }
    }
    return nearest?.key
}

private func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var row = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in stride(from: 1, through: b.count, by: 1) {
            let current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = current
        }
    }
    return row[b.count]
}
