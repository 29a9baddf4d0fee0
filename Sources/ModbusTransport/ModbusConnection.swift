import CModbus
#if canImport(Glibc)
import Glibc
#endif

/// One libmodbus context for one bus (TCP or RTU), driven by a single thread.
///
/// libmodbus contexts are not thread-safe (libmodbus NEWS 3.1.3), so a connection belongs to exactly one
/// bus thread; blocking calls here must never run on Swift's cooperative pool.
public final class ModbusConnection: @unchecked Sendable {
    // @unchecked: ownership moves once, from the creator to the bus thread that alone drives it afterwards.
    public let bus: String
    public let endpoint: BusEndpoint
    public private(set) var responseTimeoutMillis: Int
    private let context: OpaquePointer
    private var connected = false

    /// Creates the context (`modbus_new_tcp_pi` or `modbus_new_rtu`); connects lazily on the first request.
    public init(bus: String, endpoint: BusEndpoint, responseTimeoutMillis: Int) throws(ModbusError) {
        self.bus = bus
        self.endpoint = endpoint
        self.responseTimeoutMillis = responseTimeoutMillis
        let made: OpaquePointer? = switch endpoint {
        case let .tcp(host, port): modbus_new_tcp_pi(host, String(port))
        case let .rtu(line):
            modbus_new_rtu(line.device, Int32(line.baud), CChar(UInt8(ascii: line.parity.rawValue.unicodeScalars.first!)),
                           Int32(line.dataBits), Int32(line.stopBits))
        }
        guard let made else {
            throw ModbusError(code: .system(errno), call: "modbus_new", bus: bus, unit: nil, address: nil,
                              detail: "cannot create a Modbus context for \(endpoint): \(String(cString: strerror(errno)))")
        }
        context = made
        setResponseTimeout(millis: responseTimeoutMillis)
        // Without a byte timeout the response timeout bounds the whole reply.
        modbus_set_byte_timeout(context, 0, 0)
    }

    deinit {
        if connected { modbus_close(context) }
        modbus_free(context)
    }

    /// Changes the response timeout (`modbus_set_response_timeout`).
    public func setResponseTimeout(millis: Int) {
        responseTimeoutMillis = millis
        modbus_set_response_timeout(context, UInt32(millis / 1000), UInt32(millis % 1000) * 1000)
    }

    public var isConnected: Bool { connected }

    /// Opens the socket or serial port (`modbus_connect`); a no-op when already open.
    public func connect() throws(ModbusError) {
        guard !connected else { return }
        if modbus_connect(context) == -1 {
            let code = errno
            throw ModbusError(code: .connection, call: "modbus_connect", bus: bus, unit: nil, address: nil,
                              detail: "cannot open \(endpoint): \(String(cString: modbus_strerror(code)))")
        }
        connected = true
    }

    /// Closes the link; the next request reopens it.
    public func disconnect() {
        if connected { modbus_close(context) }
        connected = false
    }

    /// Reads `count` holding registers at `address` from `unit` into `buffer` (function 03).
    public func readRegisters(unit: UInt8, address: UInt16, count: Int, into buffer: UnsafeMutablePointer<UInt16>) throws(ModbusError) {
        try transaction("modbus_read_registers", unit: unit, address: address, idempotent: true) {
            modbus_read_registers($0, Int32(address), Int32(count), buffer)
        }
    }

    /// Reads `count` holding registers at `address` from `unit` (function 03).
    public func readRegisters(unit: UInt8, address: UInt16, count: Int) throws(ModbusError) -> [UInt16] {
        var words = [UInt16](repeating: 0, count: count)
        try words.withUnsafeMutableBufferPointer { (buffer) throws(ModbusError) in
            try readRegisters(unit: unit, address: address, count: count, into: buffer.baseAddress!)
        }
        return words
    }

    /// Writes one register (function 06).
    public func writeRegister(unit: UInt8, address: UInt16, value: UInt16) throws(ModbusError) {
        try transaction("modbus_write_register", unit: unit, address: address) {
            modbus_write_register($0, Int32(address), value)
        }
    }

    /// Writes consecutive registers with one request (function 16).
    public func writeRegisters(unit: UInt8, address: UInt16, values: [UInt16]) throws(ModbusError) {
        try transaction("modbus_write_registers", unit: unit, address: address) { ctx in
            values.withUnsafeBufferPointer { words in
                modbus_write_registers(ctx, Int32(address), Int32(words.count), words.baseAddress)
            }
        }
    }

    /// The one funnel every request goes through: connect, set the unit, call, decode `errno` at once,
    /// and leave the line clean after a timeout or a garbled reply.
    private func transaction(_ call: String, unit: UInt8, address: UInt16, idempotent: Bool = false,
                             _ body: (OpaquePointer) -> Int32) throws(ModbusError) {
        do { try connect() } catch {
            var located = error
            located.unit = unit
            throw located
        }
        modbus_set_slave(context, Int32(unit))
        guard body(context) == -1 else { return }
        var code = errno
        if endpoint.isSerial, code == Self.replyFromAnotherUnit {
            // The reply read was a late one from another unit; this unit's own reply follows it on the line.
            // Take that off the line too, so that the next request does not read it, and ask once more if
            // asking twice is harmless.
            var reply = [UInt8](repeating: 0, count: Int(MODBUS_MAX_ADU_LENGTH))
            _ = modbus_receive_confirmation(context, &reply)
            modbus_flush(context)
            if idempotent {
                guard body(context) == -1 else { return }
                code = errno
            }
        }
        let error = decode(errno: code, call: call, unit: unit, address: address)
        if error.leftLineDirty, endpoint.isSerial {
            // A late or stray reply must never be taken as the answer to the next request (libmodbus #83, #488).
            modbus_flush(context)
        } else if error.leftLineDirty {
            // On TCP a flush cannot catch a reply still in flight, and libmodbus rejects it by transaction id as
            // the next request's answer: only a new connection is clean.
            disconnect()
        } else if !isException(error) {
            disconnect()
        }
        throw error
    }

    /// libmodbus's EMBBADSLAVE: a reply from another unit than the one asked.
    private static let replyFromAnotherUnit = Int32(MODBUS_ENOBASE) + 17

    private func isException(_ error: ModbusError) -> Bool {
        if case .exception = error.code { true } else { false }
    }

    private func decode(errno code: Int32, call: String, unit: UInt8, address: UInt16) -> ModbusError {
        let base = Int32(MODBUS_ENOBASE)
        let within = "within \(responseTimeoutMillis)ms"
        let (kind, detail): (ModbusError.Code, String) = switch code {
        case ETIMEDOUT: (.timeout, "no reply \(within)")
        case base + 1...base + 11:
            (.exception(ModbusException(code: UInt8(code - base))), "device answered \(ModbusException(code: UInt8(code - base)))")
        case base + 12: (.badReply, "reply with a bad CRC")
        case base + 13, base + 16: (.badReply, "malformed reply: \(String(cString: modbus_strerror(code)))")
        case base + 14, base + 15: (.badReply, "reply with an invalid exception code")
        case base + 17: (.badReply, "reply from another unit than \(unit)")
        case ECONNRESET, ECONNREFUSED, EPIPE, ENOTCONN, EBADF, EIO, ENXIO, ENOENT, ENODEV, EHOSTUNREACH, ENETUNREACH:
            (.connection, "link to \(endpoint) lost: \(String(cString: strerror(code)))")
        default: (.system(code), String(cString: modbus_strerror(code)))
        }
        return ModbusError(code: kind, call: call, bus: bus, unit: unit, address: address, detail: detail)
    }
}
