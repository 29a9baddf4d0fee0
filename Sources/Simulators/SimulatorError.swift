#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A simulator failure for operators: one sentence naming the device, port, line or file at fault.
public struct SimulatorError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }

    /// The error for a failed system call, with `errno` decoded.
    static func system(_ what: String, errno code: Int32) -> SimulatorError {
        SimulatorError("\(what): \(String(cString: strerror(code)))")
    }
}
