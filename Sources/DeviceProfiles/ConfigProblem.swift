/// One thing wrong in a configuration, profile or simulator file, located by file, line and key path.
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    /// Dotted key path such as `devices[2].poll`; empty for the document itself.
    public var key: String
    public var message: String

    public init(file: String, line: Int, key: String, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        let place = line > 0 ? "\(file):\(line)" : file
        return key.isEmpty ? "\(place): \(message)" : "\(place): \(key): \(message)"
    }
}

/// Every problem found in one or more files; the operator sees them all at once, one per line.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigProblem]

    public init(_ problems: [ConfigProblem]) { self.problems = problems }

    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Collects problems while a file is read, so loading reports all of them rather than the first.
public final class ProblemLog {
    public private(set) var problems: [ConfigProblem] = []

    public init() {}

    public func report(_ file: String, _ line: Int, _ key: String, _ message: String) {
        problems.append(ConfigProblem(file: file, line: line, key: key, message: message))
    }

    public func report(at value: YAMLValue, _ message: String) {
        report(value.file, value.line, value.path, message)
    }

    public var isEmpty: Bool { problems.isEmpty }

    /// Throws everything collected, if anything.
    public func throwIfAny() throws(ConfigurationError) {
        guard !problems.isEmpty else { return }
        let ordered = problems.enumerated().sorted { ($0.element.file, $0.element.line, $0.offset) < ($1.element.file, $1.element.line, $1.offset) }
        throw ConfigurationError(ordered.map(\.element))
    }
}

extension ProblemLog {
    /// Reads the YAML file at `path` and validates it with `parse`: the value, or every problem reported (each with
    /// file:line) as one `ConfigurationError`. How each configuration file (gateway, collector) is loaded.
    public static func validated<T>(path: String, _ parse: (YAMLValue, ProblemLog) -> T?) throws(ConfigurationError) -> T {
        let log = ProblemLog()
        let value = YAMLValue.load(path: path, log: log).flatMap { parse($0, log) }
        try log.throwIfAny()
        return value!
    }

    /// `validated(path:)` for text; `file` names it in problems (the fuzz targets' entry point).
    public static func validated<T>(text: String, file: String, _ parse: (YAMLValue, ProblemLog) -> T?) throws(ConfigurationError) -> T {
        let log = ProblemLog()
        let value = YAMLValue.parse(text, file: file, log: log).flatMap { parse($0, log) }
        try log.throwIfAny()
        return value!
    }
}
