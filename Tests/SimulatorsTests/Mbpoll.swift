import Foundation
import TestSupport

/// Runs mbpoll, the independent third-party Modbus master, and parses the registers it prints.
enum Mbpoll {
    struct Failed: Error, CustomStringConvertible {
        var arguments: [String]
        var status: Int32
        var output: String
        var description: String { "mbpoll \(arguments.joined(separator: " ")) exited \(status): \(output)" }
    }

    /// Reads `count` holding registers from PDU address `address` over TCP.
    static func readTCP(port: UInt16, unit: UInt8 = 1, address: Int, count: Int) async throws -> [UInt16] {
        try await read(["-m", "tcp", "-p", "\(port)"], target: "127.0.0.1", unit: unit, address: address, count: count)
    }

    /// Reads `count` holding registers from PDU address `address` over RTU on the serial device `path`.
    static func readRTU(path: String, baud: Int = 9600, unit: UInt8, address: Int, count: Int) async throws -> [UInt16] {
        try await read(["-m", "rtu", "-b", "\(baud)", "-P", "none"], target: path, unit: unit, address: address, count: count)
    }

    /// Runs mbpoll with `arguments` and returns status and output.
    static func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await ChildProcess.run(SerialPair.executablePath("mbpoll"), arguments)
    }

    private static func read(_ mode: [String], target: String, unit: UInt8, address: Int, count: Int) async throws
        -> [UInt16] {
        let arguments = mode + ["-a", "\(unit)", "-0", "-r", "\(address)", "-c", "\(count)", "-t", "4:hex",
                                "-1", "-o", "2", target]
        let (status, output) = try await run(arguments)
        guard status == 0 else { throw Failed(arguments: arguments, status: status, output: output) }
        return parseRegisters(output)
    }

    /// The values of `[addr]: 0xHHHH` lines in mbpoll's output, in order.
    static func parseRegisters(_ output: String) -> [UInt16] {
        output.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("["), let colon = line.firstIndex(of: ":") else { return nil }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            return value.hasPrefix("0x") ? UInt16(value.dropFirst(2), radix: 16) : UInt16(value)
        }
    }
}

