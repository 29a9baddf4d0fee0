import AccessModel
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
        if connected { closeLine() }
        modbus_free(context)
        reply.deallocate()
    }

    /// Changes the response timeout (`modbus_set_response_timeout`).
    public func setResponseTimeout(millis: Int) {
        responseTimeoutMillis = millis
        replyWindowMicros = 0
        modbus_set_response_timeout(context, UInt32(millis / 1000), UInt32(millis % 1000) * 1000)
    }

    private var responseTimeoutMicros: Int { max(1, responseTimeoutMillis * 1000) }

    public var isConnected: Bool { connected }

    /// Opens the socket or serial port (`modbus_connect`); a no-op when already open.
    public func connect() throws(ModbusError) {
        guard !connected else { return }
        if modbus_connect(context) == -1 {
            let code = errno
            throw ModbusError(code: .connection, call: "modbus_connect", bus: bus, unit: nil, address: nil,
                              detail: "cannot open \(endpoint): \(String(cString: modbus_strerror(code)))")
        }
        if case let .rtu(line) = endpoint {
            let fd = modbus_get_socket(context)
            // One master per RS-485 line: a second one (probe, another gateway, a vendor tool) interleaves frames
            // with ours and both read garbage. An advisory lock tells other accessgw processes; TIOCEXCL keeps
            // other non-root programs from opening the port at all.
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let holder = SerialLineLock.holder(of: fd)
                modbus_close(context)  // not `closeLine()`: the exclusive mode, if any, is the holder's to clear
                throw ModbusError(code: .connection, call: "flock", bus: bus, unit: nil, address: nil,
                                  detail: "\(line.device) is in use by \(holder ?? "another process"): one master per RS-485 line; "
                                      + "stop it first, or probe a configured device through the daemon (accessgw probe --config FILE DEVICE)")
            }
            _ = ioctl(fd, UInt(TIOCEXCL))
            if let rs485 = line.rs485 {
                do { try applyRS485(rs485, device: line.device) } catch {
                    closeLine()
                    throw error
                }
            }
        } else {
            // Requests and replies on TCP go through `tcpRoundTrip`: blocking calls, bounded by socket timeouts.
            let fd = modbus_get_socket(context)
            let flags = fcntl(fd, F_GETFL)
            if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
            setSocketTimeouts(fd, micros: responseTimeoutMicros)
            pendingBytes = 0
        }
        connected = true
    }

    /// Switches the open port to RS-485 mode with RTS direction control. A port whose driver has no RS-485 mode
    /// (a USB adapter with auto-direction, a pseudo-terminal) fails the ioctl with ENOTTY: said in one sentence.
    private func applyRS485(_ rs485: RS485, device: String) throws(ModbusError) {
        func failed(_ call: String, _ code: Int32) -> ModbusError {
            let reason = code == ENOTTY
                ? "its driver has no RS-485 mode (ENOTTY); remove rs485 from the bus or use a port with RTS direction control"
                : String(cString: strerror(code))
            return ModbusError(code: .connection, call: call, bus: bus, unit: nil, address: nil,
                               detail: "cannot switch \(device) to RS-485 with RTS direction control: \(reason)")
        }
        if modbus_rtu_set_serial_mode(context, Int32(MODBUS_RTU_RS485)) == -1 { throw failed("modbus_rtu_set_serial_mode", errno) }
        let level = rs485.rts == .up ? MODBUS_RTU_RTS_UP : MODBUS_RTU_RTS_DOWN
        if modbus_rtu_set_rts(context, Int32(level)) == -1 { throw failed("modbus_rtu_set_rts", errno) }
        if let delay = rs485.delayMicros, modbus_rtu_set_rts_delay(context, Int32(delay)) == -1 {
            throw failed("modbus_rtu_set_rts_delay", errno)
        }
    }

    /// Closes the link; the next request reopens it.
    public func disconnect() {
        if connected { closeLine() }
        connected = false
        pendingBytes = 0
    }

    /// Closes the socket or serial port (`modbus_close`). A serial line leaves exclusive mode first (TIOCNXCL): on
    /// a pty or a serial-over-IP line the tty outlives our descriptor, and left exclusive it refuses every later
    /// open by the service user ("Device or resource busy") — after a probe, a reload or a restart.
    private func closeLine() {
        if case .rtu = endpoint {
            let fd = modbus_get_socket(context)
            if fd >= 0 { _ = ioctl(fd, UInt(TIOCNXCL)) }
        }
        modbus_close(context)
    }

    /// Reads `count` holding registers at `address` from `unit` into `buffer` (function 03).
    public func readRegisters(unit: UInt8, address: UInt16, count: Int, into buffer: UnsafeMutablePointer<UInt16>) throws(ModbusError) {
        let reply = try exchange("modbus_read_registers", unit: unit, address: address, idempotent: true,
                                 request: [0x03, UInt8(address >> 8), UInt8(address & 0xFF), UInt8(count >> 8), UInt8(count & 0xFF)])
        for index in 0..<count {
            buffer[index] = UInt16(reply[reply.startIndex + 2 + 2 * index]) << 8 | UInt16(reply[reply.startIndex + 3 + 2 * index])
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
        _ = try exchange("modbus_write_register", unit: unit, address: address,
                         request: [0x06, UInt8(address >> 8), UInt8(address & 0xFF), UInt8(value >> 8), UInt8(value & 0xFF)])
    }

    /// Writes consecutive registers with one request (function 16).
    public func writeRegisters(unit: UInt8, address: UInt16, values: [UInt16]) throws(ModbusError) {
        var request: [UInt8] = [0x10, UInt8(address >> 8), UInt8(address & 0xFF), UInt8(values.count >> 8),
                                UInt8(values.count & 0xFF), UInt8(truncatingIfNeeded: values.count * 2)]
        request.reserveCapacity(6 + values.count * 2)
        for value in values { request += [UInt8(value >> 8), UInt8(value & 0xFF)] }
        _ = try exchange("modbus_write_registers", unit: unit, address: address, request: request)
    }

    /// Writes `values` at `writeAddress`, then reads `count` holding registers at `readAddress` into `buffer`, in one
    /// transaction (function 23, Read/Write Multiple Registers: the device performs the write before the read). The
    /// reply is checked as a function 03 reply is: the unit, the function and a byte count of exactly `count` registers.
    public func writeAndReadRegisters(unit: UInt8, writeAddress: UInt16, values: [UInt16], readAddress: UInt16, count: Int,
                                      into buffer: UnsafeMutablePointer<UInt16>) throws(ModbusError) {
        var request: [UInt8] = [0x17, UInt8(readAddress >> 8), UInt8(readAddress & 0xFF), UInt8(count >> 8), UInt8(count & 0xFF),
                                UInt8(writeAddress >> 8), UInt8(writeAddress & 0xFF), UInt8(values.count >> 8),
                                UInt8(values.count & 0xFF), UInt8(truncatingIfNeeded: values.count * 2)]
        request.reserveCapacity(10 + values.count * 2)
        for value in values { request += [UInt8(value >> 8), UInt8(value & 0xFF)] }
        let reply = try exchange("modbus_write_and_read_registers", unit: unit, address: writeAddress, request: request)
        for index in 0..<count {
            buffer[index] = UInt16(reply[reply.startIndex + 2 + 2 * index]) << 8 | UInt16(reply[reply.startIndex + 3 + 2 * index])
        }
    }

    /// Bytes found waiting on the line before a request and discarded: trailing bytes of an earlier reply or noise.
    public private(set) var discardedBytes = 0

    /// Replies (or their rest) that arrived on an RTU line after their request had timed out or failed, and were
    /// discarded while the line was given its silence: each is a device slower than `timeout` allows.
    public private(set) var lateReplies = 0

    /// The whole time the last RTU request waited for its reply, in microseconds: `timeout` plus the line time.
    private var replyWindowMicros = 0

    /// On RTU, sets libmodbus's response timeout (which bounds the whole reply: the byte timeout is off) to the
    /// configured timeout plus the time the request and this request's reply take on the wire (SPEC 2).
    private func armReplyWindow(for request: [UInt8]) {
        guard case let .rtu(line) = endpoint else { return }
        let window = line.timing.responseWindowNanoseconds(timeoutMillis: responseTimeoutMillis,
                                                           requestBytes: RTUFrameLength.request(request),
                                                           replyBytes: RTUFrameLength.reply(to: request))
        let micros = Int((window + 999) / 1000)
        guard micros != replyWindowMicros else { return }
        replyWindowMicros = micros
        modbus_set_response_timeout(context, UInt32(micros / 1_000_000), UInt32(micros % 1_000_000))
    }

    /// After a timeout or a garbled reply on RTU: listens until the line has been silent for a frame gap — after a
    /// timeout at least as long as this request's reply would take, so a reply that began at the deadline is taken
    /// off whole — and discards and counts what arrived, so that no late reply is read as the answer to the next
    /// request. A garbled reply has arrived already: only its trailing bytes can follow, within a gap.
    private func giveLineItsSilence(after request: [UInt8], timedOut: Bool) {
        defer { modbus_flush(context) }
        let fd = modbus_get_socket(context)
        guard case let .rtu(line) = endpoint, fd >= 0 else { return }
        let timing = line.timing
        let gapMicros = Int64(timing.frameSilenceNanoseconds / 1000) + 1
        let replyMicros = timedOut ? Int64(timing.frameNanoseconds(RTUFrameLength.reply(to: request)) / 1000) : 0
        var quietUntil = monotonicMicros() + replyMicros + gapMicros
        var found = 0
        var scratch = [UInt8](repeating: 0, count: 256)
        while true {
            let left = quietUntil - monotonicMicros()
            guard left > 0 else { break }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32((left + 999) / 1000))
            if ready < 0, errno == EINTR { continue }
            guard ready > 0 else { if ready < 0 { break } else { continue } }
            let count = read(fd, &scratch, scratch.count)
            if count < 0, errno == EAGAIN || errno == EINTR { continue }
            guard count > 0 else { break }
            found += count
            quietUntil = max(quietUntil, monotonicMicros() + gapMicros)
        }
        discardedBytes += found
        if found > 0, timedOut { lateReplies += 1 }
    }

    /// The one funnel every request goes through: connect, drop stray bytes, send the request PDU for `unit`, and
    /// accept only a reply from that unit with the request's function and the length it implies (libmodbus checks
    /// neither the unit of a TCP reply nor the MBAP length); decode `errno` at once, and leave the line clean after
    /// a timeout or a garbled reply. Returns the reply PDU.
    func exchange(_ call: String, unit: UInt8, address: UInt16, idempotent: Bool = false,
                          request: [UInt8]) throws(ModbusError) -> Reply {
        do { try connect() } catch {
            var located = error
            located.unit = unit
            throw located
        }
        modbus_set_slave(context, Int32(unit))
        discardStrayBytes()
        armReplyWindow(for: request)
        var result = roundTrip(call, unit: unit, address: address, request: request)
        if case let .failure(error) = result, endpoint.isSerial, error.otherUnit {
            // The reply read was a late one from another unit; this unit's own reply follows it on the line.
            // Take that off the line too, so that the next request does not read it, and ask once more if
            // asking twice is harmless.
            _ = modbus_receive_confirmation(context, reply)
            modbus_flush(context)
            if idempotent { result = roundTrip(call, unit: unit, address: address, request: request) }
        }
        switch result {
        case let .success(pdu): return pdu
        case let .failure(error):
            if error.leftLineDirty, endpoint.isSerial {
                // A late or stray reply must never be taken as the answer to the next request (libmodbus #83, #488).
                giveLineItsSilence(after: request, timedOut: error.code == .timeout)
            } else if error.leftLineDirty {
                // On TCP a flush cannot catch a reply still in flight: only a new connection is clean.
                disconnect()
            } else if !isException(error) {
                disconnect()
            }
            throw error
        }
    }

    /// A reply PDU in the connection's reply buffer: valid until the next request.
    typealias Reply = Slice<UnsafeBufferPointer<UInt8>>

    /// Reply buffer, one ADU.
    private let reply = UnsafeMutablePointer<UInt8>.allocate(capacity: Int(MODBUS_MAX_ADU_LENGTH))

    /// Drops bytes already waiting before a request: whatever they are, they are no answer to it.
    private func discardStrayBytes() {
        if pendingBytes > 0 {
            // Received with the last reply on TCP, after its end.
            discardedBytes += pendingBytes
            pendingBytes = 0
        }
        var waiting: Int32 = 0
        let fd = modbus_get_socket(context)
        guard fd >= 0, ioctl(fd, UInt(FIONREAD), &waiting) == 0, waiting > 0 else { return }
        discardedBytes += Int(waiting)
        modbus_flush(context)
    }

    /// Sends one request and reads and checks one reply.
    private func roundTrip(_ call: String, unit: UInt8, address: UInt16, request: [UInt8]) -> Result<Reply, ModbusError> {
        func bad(_ detail: String) -> Result<Reply, ModbusError> {
            .failure(ModbusError(code: .badReply, call: call, bus: bus, unit: unit, address: address, detail: detail))
        }
        let length: Int
        if endpoint.isSerial {
            let raw = [unit] + request
            guard modbus_send_raw_request(context, raw, Int32(raw.count)) != -1 else {
                return .failure(decode(errno: errno, call: call, unit: unit, address: address))
            }
            length = Int(modbus_receive_confirmation(context, reply))
        } else {
            length = tcpRoundTrip(unit: unit, request: request)
        }
        guard length != -1 else { return .failure(decode(errno: errno, call: call, unit: unit, address: address)) }
        let header = Int(modbus_get_header_length(context))
        let checksum = endpoint.isSerial ? 2 : 0
        guard length > 0 else {
            // libmodbus answers 0 for an RTU frame of another unit (it skips its CRC).
            var error = decode(errno: Self.replyFromAnotherUnit, call: call, unit: unit, address: address)
            error.otherUnit = endpoint.isSerial
            return .failure(error)
        }
        guard length >= header + 2 + checksum else { return bad("reply of \(length) bytes, too short for any answer") }
        let adu = UnsafeBufferPointer(start: reply, count: length)
        if !endpoint.isSerial {
            let mbapLength = Int(adu[4]) << 8 | Int(adu[5])
            guard adu[2] == 0, adu[3] == 0 else { return bad("reply with protocol id \(Int(adu[2]) << 8 | Int(adu[3])), not 0") }
            guard mbapLength == length - 6 else {
                return bad("reply whose MBAP length \(mbapLength) does not match its \(length - 6) bytes")
            }
        }
        guard adu[header - 1] == unit else { return bad("reply from unit \(adu[header - 1]), not \(unit)") }
        let pdu = adu[header..<(length - checksum)]
        let function = pdu[pdu.startIndex]
        if function == request[0] | 0x80 {
            guard pdu.count == 2, (1...11).contains(pdu[pdu.startIndex + 1]) else { return bad("reply with an invalid exception code") }
            let exception = ModbusException(code: pdu[pdu.startIndex + 1])
            return .failure(ModbusError(code: .exception(exception), call: call, bus: bus, unit: unit, address: address,
                                        detail: "device answered \(exception)"))
        }
        guard function == request[0] else { return bad("reply with function \(function) to a request with function \(request[0])") }
        switch function {
        case 1...4, 23:
            // Function 23 carries its read quantity where the reads do (after the read address).
            let quantity = Int(request[3]) << 8 | Int(request[4])
            let bytes = function <= 2 ? (quantity + 7) / 8 : quantity * 2
            guard pdu.count == 2 + bytes, Int(pdu[pdu.startIndex + 1]) == bytes else {
                return bad("reply of \(pdu.count - 1) data bytes to a request for \(quantity) value(s)")
            }
        case 5, 6:
            guard pdu.elementsEqual(request) else { return bad("reply that does not echo the write") }
        case 15, 16:
            guard pdu.count == 5, pdu.elementsEqual(request[0..<5]) else { return bad("reply that does not echo the written address and quantity") }
        default: break
        }
        return .success(pdu)
    }

    // MARK: Modbus TCP

    /// Bytes received after the end of the last TCP reply (junk a device sent after it): dropped and counted before
    /// the next request, as the stray bytes still waiting in the socket are.
    private var pendingBytes = 0
    /// The transaction id of the last TCP request.
    private var transactionID: UInt16 = 0
    /// SO_RCVTIMEO and SO_SNDTIMEO of the TCP socket now, in microseconds.
    private var socketTimeoutMicros = 0

    /// `modbus_send_raw_request` and `modbus_receive_confirmation` for Modbus TCP, in one `send` and usually one
    /// `recv`. libmodbus waits in `select` before each of the two or three `recv`s a reply takes (the header and
    /// function, then what the function implies), seven calls per request with the stray-byte check; the bus
    /// pollers did little else. The socket is made blocking with SO_RCVTIMEO as the response timeout, which still
    /// bounds the whole reply. The frame and the reply's length follow libmodbus 3.1.6 (`_modbus_receive_msg` for a
    /// confirmation: the length implied by the function code, not the MBAP length, so that the checks in
    /// `roundTrip` see what they saw before), and so do the `errno`s: ETIMEDOUT, ECONNRESET when the peer closed,
    /// EMBBADDATA for a short send or an oversized reply. Returns the reply's length in `reply`, or -1 with `errno`.
    private func tcpRoundTrip(unit: UInt8, request: [UInt8]) -> Int {
        let fd = modbus_get_socket(context)
        let capacity = Int(MODBUS_MAX_ADU_LENGTH)
        transactionID &+= 1
        // The request is built in the reply buffer, which the reply overwrites.
        let frameLength = 7 + request.count
        guard frameLength <= capacity else { errno = Self.badData; return -1 }
        reply[0] = UInt8(transactionID >> 8)
        reply[1] = UInt8(transactionID & 0xFF)
        reply[2] = 0
        reply[3] = 0
        reply[4] = UInt8((request.count + 1) >> 8)
        reply[5] = UInt8((request.count + 1) & 0xFF)
        reply[6] = unit
        for (index, byte) in request.enumerated() { reply[7 + index] = byte }
        if socketTimeoutMicros != responseTimeoutMicros { setSocketTimeouts(fd, micros: responseTimeoutMicros) }
        var sent: Int
        repeat { sent = send(fd, reply, frameLength, Int32(MSG_NOSIGNAL)) } while sent == -1 && errno == EINTR
        if sent == -1 {
            if errno == EAGAIN || errno == EWOULDBLOCK { errno = ETIMEDOUT }
            return -1
        }
        guard sent == frameLength else { errno = Self.badData; return -1 }

        let deadline = monotonicMicros() + Int64(responseTimeoutMicros)
        var received = 0
        var needed = 8  // MBAP header and function code
        var step = 0  // 0: function, 1: what follows the function (count, address), 2: data
        while true {
            while received < needed {
                let count = recv(fd, reply + received, capacity - received, 0)
                if count > 0 {
                    received += count
                    if received < needed, !boundSocketTimeout(fd, deadline: deadline) { return -1 }
                    continue
                }
                if count == 0 { errno = ECONNRESET; return -1 }
                if errno == EAGAIN || errno == EWOULDBLOCK { errno = ETIMEDOUT; return -1 }
                if errno != EINTR || !boundSocketTimeout(fd, deadline: deadline) { return -1 }
            }
            let function = reply[7]
            switch step {
            case 0:
                let afterFunction = switch function {
                case 5, 6, 15, 16: 4
                case 22: 6
                default: 1
                }
                needed += afterFunction
                step = 1
            case 1:
                let data = function <= 4 || function == 17 || function == 23 ? Int(reply[8]) : 0
                guard needed + data <= capacity else { errno = Self.badData; return -1 }
                needed += data
                step = 2
            default:
                pendingBytes = received - needed
                return needed
            }
        }
    }

    /// Sets the socket timeouts to what is left until `deadline`; false (errno ETIMEDOUT) when nothing is.
    private func boundSocketTimeout(_ fd: Int32, deadline: Int64) -> Bool {
        let left = Int(deadline - monotonicMicros())
        guard left > 0 else { errno = ETIMEDOUT; return false }
        setSocketTimeouts(fd, micros: left)
        return true
    }

    private func setSocketTimeouts(_ fd: Int32, micros: Int) {
        var timeout = timeval(tv_sec: micros / 1_000_000, tv_usec: micros % 1_000_000)
        let size = socklen_t(MemoryLayout<timeval>.size)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, size)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, size)
        socketTimeoutMicros = micros
    }


    /// libmodbus's EMBBADDATA.
    private static let badData = Int32(MODBUS_ENOBASE) + 13

    /// libmodbus's EMBBADSLAVE: a reply from another unit than the one asked.
    private static let replyFromAnotherUnit = Int32(MODBUS_ENOBASE) + 17

    private func isException(_ error: ModbusError) -> Bool {
        if case .exception = error.code { true } else { false }
    }

    private func decode(errno code: Int32, call: String, unit: UInt8, address: UInt16) -> ModbusError {
        let base = Int32(MODBUS_ENOBASE)
        var within = "within \(responseTimeoutMillis)ms"
        if case let .rtu(line) = endpoint, replyWindowMicros > responseTimeoutMillis * 1000 {
            // The line time added to the timeout, said so that an operator reading "200ms" knows what was waited.
            within += " (+\((replyWindowMicros - responseTimeoutMillis * 1000 + 500) / 1000)ms for the frames at \(line.baud) baud)"
        }
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

/// Who holds the advisory lock on a serial line, from /proc/locks, for the sentence that refuses a second master.
enum SerialLineLock {
    /// "pid 1234 (accessgw run --config /etc/accessgw/gateway.yaml)", or nil when it cannot be told.
    static func holder(of fd: Int32) -> String? {
        var info = stat()
        guard fstat(fd, &info) == 0, let locks = readText("/proc/locks") else { return nil }
        for line in locks.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            // "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF"
            guard fields.count >= 6, fields[1] == "FLOCK", let pid = Int32(fields[4]),
                  let inode = fields[5].split(separator: ":").last.flatMap({ UInt64($0) }), inode == UInt64(info.st_ino)
            else { continue }
            let command = readText("/proc/\(pid)/cmdline").map {
                $0.split(separator: "\0").map(String.init).joined(separator: " ")
            }
            return "pid \(pid)" + (command.map { " (\($0))" } ?? "")
        }
        return nil
    }

    static func readText(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
