import Foundation

/// Finds profiles by name in the profile directories, or by path, and loads each once.
public final class ProfileLibrary {
    public let directories: [String]
    private var loaded: [String: DeviceProfile] = [:]
    private var sources: [String: Data] = [:]

    /// The directories searched when the configuration names none: the installed ones, then a `Devices/`
    /// folder beside or above the executable (a source checkout), so development runs need no install.
    public static var defaultDirectories: [String] {
        var dirs = ["/etc/accessgw/devices", "/usr/share/accessgw/devices"]
        if let env = ProcessInfo.processInfo.environment["ACCESSGW_PROFILE_DIR"] { dirs.insert(env, at: 0) }
        let executableDir = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath().deletingLastPathComponent()
        dirs.append(executableDir.deletingLastPathComponent().appendingPathComponent("share/accessgw/devices").path)
        var dir = executableDir
        for _ in 0..<6 {
            let candidate = dir.appendingPathComponent("Devices").path
            if FileManager.default.fileExists(atPath: candidate + "/face-door.yaml") {
                dirs.append(candidate)
                break
            }
            dir = dir.deletingLastPathComponent()
        }
        return dirs
    }

    public init(directories: [String] = ProfileLibrary.defaultDirectories) {
        self.directories = directories
    }

    /// The file a profile reference names: a path when it contains `/` or ends in `.yaml`, else `<dir>/<name>.yaml`
    /// in the first directory that has it.
    public func path(for reference: String) -> String? {
        if reference.contains("/") || reference.hasSuffix(".yaml") {
            return FileManager.default.fileExists(atPath: reference) ? reference : nil
        }
        return directories.map { "\($0)/\(reference).yaml" }.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// Loads the referenced profile (once); an unknown reference says where it looked.
    public func profile(_ reference: String) throws(ProfileLookupError) -> DeviceProfile {
        if let profile = loaded[reference] { return profile }
        guard let path = path(for: reference) else {
            throw ProfileLookupError.notFound(reference: reference, searched: directories)
        }
        do {
            let profile = try DeviceProfile.load(path: path)
            loaded[reference] = profile
            return profile
        } catch {
            throw ProfileLookupError.invalid(error)
        }
    }

    /// The bytes of the profile file at `path`, read once per library: every device of a profile shares them (a
    /// reload compares them to see whether the file changed). 1000 devices kept 1000 copies before, 3.8 MB.
    public func source(ofFile path: String) -> Data {
        if let data = sources[path] { return data }
        let data = FileManager.default.contents(atPath: path) ?? Data()
        sources[path] = data
        return data
    }
}

/// Why a profile reference could not be turned into a profile.
public enum ProfileLookupError: Error, CustomStringConvertible {
    case notFound(reference: String, searched: [String])
    case invalid(ConfigurationError)

    public var description: String {
        switch self {
        case let .notFound(reference, searched):
            reference.contains("/") || reference.hasSuffix(".yaml")
                ? "profile file \(reference) does not exist"
                : "no profile named '\(reference)' (looked for \(reference).yaml in \(searched.joined(separator: ", ")))"
        case let .invalid(error): error.description
        }
    }
}
