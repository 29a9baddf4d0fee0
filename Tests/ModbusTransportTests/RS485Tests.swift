import Foundation
import ModbusTransport
import Testing
import TestSupport

@Suite("RS-485 direction control")
struct RS485Tests {
    /// A pseudo-terminal has no RS-485 mode: the ioctl fails with ENOTTY, and the operator reads one sentence naming
    /// the bus and the device, on every attempt, with the port closed again in between.
    @Test func portWithoutRS485ModeIsRefusedInOneSentence() async throws {
        let pair = try await SerialPair.start()
        defer { pair.stop() }
        let line = SerialLine(device: pair.masterEnd, baud: 9600, rs485: RS485(rts: .up, delayMicros: 1000))
        let connection = try ModbusConnection(bus: "b3-rs485", endpoint: .rtu(line), responseTimeoutMillis: 200)
        let failures = try await onBus { () -> [String] in
            (0..<2).map { _ in
                do { try connection.connect(); return "connected" } catch { return "\(error)" }
            }
        }
        let sentence = "bus b3-rs485: cannot switch \(pair.masterEnd) to RS-485 with RTS direction control: its driver has no "
            + "RS-485 mode (ENOTTY); remove rs485 from the bus or use a port with RTS direction control (modbus_rtu_set_serial_mode)"
        #expect(failures == [sentence, sentence])
        #expect(!connection.isConnected)
    }

    /// Without `rs485` the same pty opens as before: the setting is the only difference.
    @Test func portWithoutTheSettingOpens() async throws {
        let pair = try await SerialPair.start()
        defer { pair.stop() }
        let connection = try ModbusConnection(bus: "b3-rs485", endpoint: .rtu(SerialLine(device: pair.masterEnd, baud: 9600)),
                                              responseTimeoutMillis: 200)
        try await onBus { try connection.connect() }
        #expect(connection.isConnected)
        connection.disconnect()
    }

    /// Issue 19 item 14: the line was left in exclusive mode (TIOCEXCL) after every close, so on a pty or a
    /// serial-over-IP line the service user got "Device or resource busy" for ever. Cleared before every close:
    /// a disconnect, a failed setup, the connection's end.
    @Test func theLineIsNeverLeftInExclusiveMode() async throws {
        let pair = try await SerialPair.start()
        defer { pair.stop() }
        /// TIOCGEXCL (`_IOR('T', 0x40, int)`, Linux 3.8): whether the tty is in exclusive mode.
        func exclusive() throws -> Bool {
            let fd = open(pair.masterEnd, O_RDWR | O_NOCTTY | O_NONBLOCK)  // root may open an exclusive tty
            try #require(fd >= 0, "open \(pair.masterEnd): \(String(cString: strerror(errno)))")
            defer { close(fd) }
            var state: Int32 = 0
            try #require(ioctl(fd, UInt(0x8004_5440), &state) == 0, "TIOCGEXCL: \(String(cString: strerror(errno)))")
            return state != 0
        }
        let line = SerialLine(device: pair.masterEnd, baud: 9600)
        let connection = try ModbusConnection(bus: "b3-rs485", endpoint: .rtu(line), responseTimeoutMillis: 200)
        try await onBus { try connection.connect() }
        #expect(try exclusive(), "exclusive while open: other programs stay off the line")
        connection.disconnect()
        #expect(try !exclusive(), "after disconnect")
        try await onBus { try ModbusConnection(bus: "b3-rs485", endpoint: .rtu(line), responseTimeoutMillis: 200).connect() }
        #expect(try !exclusive(), "after the connection's end")

        let rs485 = SerialLine(device: pair.masterEnd, baud: 9600, rs485: RS485(rts: .up, delayMicros: 1000))
        let failing = try ModbusConnection(bus: "b3-rs485", endpoint: .rtu(rs485), responseTimeoutMillis: 200)
        _ = try await onBus { () -> Bool in (try? failing.connect()) != nil }
        #expect(try !exclusive(), "after a setup that failed")
    }
}
