import AccessModel
import CMosquitto
import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What libmosquitto's network thread reports through its callbacks.
enum MosquittoEvent: Sendable {
    /// A CONNACK arrived; `code` 0 means accepted, anything else is the broker's refusal.
    case connected(code: Int32)
    /// The connection ended (or a connection attempt failed); `rc` 0 means after our own DISCONNECT.
    /// `errno` is read on the network thread, for `MOSQ_ERR_ERRNO`.
    case disconnected(rc: Int32, errno: Int32)
    /// A PUBACK for `mid`; `reasonCode` is 0 for MQTT 3.1.1, the PUBACK reason code for MQTT 5.
    case acknowledged(mid: Int32, reasonCode: Int32)
    case log(level: Int32, message: String)
    /// A PUBLISH from the broker for one of our subscriptions (commands, SPEC 4.1).
    case message(IncomingMessage)
    /// A SUBACK (MQTT 5).
    case subscribed
}

/// Owns one libmosquitto client (`struct mosquitto *`) and funnels every call through `call(_:_:)`, which turns
/// a `MOSQ_ERR_*` return into an `MQTTError` naming the call and the broker.
final class MosquittoClient: @unchecked Sendable {
    // @unchecked: `handle` is set once and freed in deinit; libmosquitto itself locks its state for calls made
    // from other threads while `mosquitto_loop_start`'s thread runs, and our own mutable state sits in Mutexes.
    private let handle: OpaquePointer
    let settings: MQTTSettings
    private let handler = Mutex<Callback<MosquittoEvent>?>(nil)
    /// libmosquitto logs two DEBUG lines per message; they are only turned into Strings when wanted (see `setLibraryLog`).
    private let forwardDebugLog: Bool

    /// `mosquitto_lib_init` once per process; SIGPIPE ignored so a write to a dead broker socket is an error
    /// return (EPIPE) rather than the end of the daemon.
    private static let libraryInitialised: Bool = {
        signal(SIGPIPE, SIG_IGN)
        return mosquitto_lib_init() == Int32(MOSQ_ERR_SUCCESS.rawValue)
    }()

    /// `mosquitto_new` with a clean session; configures protocol, in-flight window, credentials, TLS, Will and
    /// reconnect backoff, all before any connection exists.
    init(settings: MQTTSettings, will: LastWill?, forwardDebugLog: Bool = false) throws(MQTTError) {
        self.settings = settings
        self.forwardDebugLog = forwardDebugLog
        guard Self.libraryInitialised else {
            throw MQTTError(kind: .library, code: Int32(MOSQ_ERR_UNKNOWN.rawValue), call: "mosquitto_lib_init",
                            broker: settings.broker, message: "libmosquitto could not be initialised")
        }
        // A session expiry (MQTT 5) needs Clean Start off, so the broker hands the kept session back.
        let cleanStart = settings.protocolVersion != .v5 || settings.sessionExpirySeconds == 0
        guard let handle = mosquitto_new(settings.clientID, cleanStart, nil) else {
            let saved = errno
            throw MQTTError(kind: .system, code: saved, call: "mosquitto_new", broker: settings.broker,
                            message: "broker \(settings.broker): cannot create an MQTT client for client id \(settings.clientID): "
                                + sentenceCase(String(cString: strerror(saved))))
        }
        self.handle = handle
        do {
            wakePipe = try Self.makeWakePipe(broker: settings.broker)
        } catch {
            mosquitto_destroy(handle)
            throw error
        }
        if settings.protocolVersion == .v5 {
            cloudEventProperties = Self.properties(contentType: "application/cloudevents+json")
            jsonProperties = Self.properties(contentType: "application/json")
        } else {
            (cloudEventProperties, jsonProperties) = (nil, nil)
        }
        // The user data pointer is set after `self` is complete; the callbacks ignore a nil `obj`.
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        try configure(will: will)
    }

    deinit {
        // The network thread holds a strong reference while it runs, so it has ended by now.
        mosquitto_destroy(handle)
        close(wakePipe.reader)
        close(wakePipe.writer)
        var properties = (cloudEventProperties, jsonProperties)
        mosquitto_property_free_all(&properties.0)
        mosquitto_property_free_all(&properties.1)
    }

    /// Where callbacks go; set before `start`.
    func setEventHandler(_ body: @escaping @Sendable (MosquittoEvent) -> Void) {
        let box = Callback(body)
        handler.withLock { $0 = box }
    }

    /// The funnel: runs one libmosquitto call and throws its failure as an `MQTTError` naming `name`.
    func call(_ name: String, _ body: (OpaquePointer) -> Int32) throws(MQTTError) {
        let rc = body(handle)
        let saved = errno
        guard rc == Int32(MOSQ_ERR_SUCCESS.rawValue) else {
            throw MQTTError.library(rc, call: name, broker: settings.broker, errno: saved)
        }
    }

    private func configure(will: LastWill?) throws(MQTTError) {
        let settings = settings
        let version = settings.protocolVersion == .v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311
        try call("mosquitto_int_option(MOSQ_OPT_PROTOCOL_VERSION)") {
            mosquitto_int_option($0, MOSQ_OPT_PROTOCOL_VERSION, version)
        }
        try call("mosquitto_int_option(MOSQ_OPT_SEND_MAXIMUM)") {
            mosquitto_int_option($0, MOSQ_OPT_SEND_MAXIMUM, Int32(clamping: settings.maxInflight))
        }
        try call("mosquitto_int_option(MOSQ_OPT_TCP_NODELAY)") { mosquitto_int_option($0, MOSQ_OPT_TCP_NODELAY, 1) }
        if settings.username != nil || settings.password != nil {
            try call("mosquitto_username_pw_set") { mosquitto_username_pw_set($0, settings.username, settings.password) }
        }
        if let tls = settings.tls {
            do {
                try call("mosquitto_tls_set") { mosquitto_tls_set($0, tls.caFile, nil, tls.certFile, tls.keyFile, nil) }
            } catch {
                var error = error
                let files = [tls.caFile, tls.certFile, tls.keyFile].compactMap { $0 }.joined(separator: ", ")
                let cause = error.kind == .system ? String(cString: strerror(error.code)) : String(cString: mosquitto_strerror(error.code))
                error.message = "broker \(settings.broker): cannot use the TLS files \(files): \(sentenceCase(cause))"
                throw error
            }
        }
        if let will {
            try call("mosquitto_will_set") {
                mosquitto_will_set($0, will.topic, Int32(will.payload.utf8.count), will.payload, will.qos, will.retain)
            }
        }
        let low = UInt32(max(1, settings.reconnectDelay.lowerBound.components.seconds))
        let high = UInt32(max(Int64(low), settings.reconnectDelay.upperBound.components.seconds))
        try call("mosquitto_reconnect_delay_set") { mosquitto_reconnect_delay_set($0, low, high, true) }
        installCallbacks()
    }

    /// libmosquitto formats every log line into a fresh malloc'd buffer before the callback can drop it, two DEBUG lines
    /// per message (`sending PUBLISH`, `received PUBACK`): about a microsecond per event on the network thread. What is
    /// worth reading, a refused TCP connection or OpenSSL's reason for a failed handshake, comes while connecting; so
    /// the log is on while connecting and off once a CONNACK accepted the connection, unless DEBUG lines are wanted.
    /// A connection lost later is still reported, by the disconnect callback's code.
    private func setLibraryLog(_ on: Bool) {
        mosquitto_log_callback_set(handle, on ? Self.logCallback : nil)
    }

    private static let logCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?) -> Void = {
        _, obj, level, text in
        guard let obj, let text else { return }
        let client = MosquittoClient.from(obj)
        guard level != MOSQ_LOG_DEBUG || client.forwardDebugLog else { return }
        if level == MOSQ_LOG_ERR { client.loggedError.withLock { $0 = String(cString: text) } }
        client.deliver(.log(level: level, message: String(cString: text)))
    }

    private func installCallbacks() {
        setLibraryLog(true)
        if settings.protocolVersion == .v5 {
            mosquitto_connect_v5_callback_set(handle) { _, obj, rc, _, _ in
                guard let obj else { return }
                MosquittoClient.from(obj).connected(code: rc)
            }
            mosquitto_disconnect_v5_callback_set(handle) { _, obj, rc, _ in
                let saved = errno
                guard let obj else { return }
                MosquittoClient.from(obj).disconnected(rc: rc, errno: saved)
            }
            mosquitto_publish_v5_callback_set(handle) { _, obj, mid, reason, _ in
                guard let obj else { return }
                MosquittoClient.from(obj).deliver(.acknowledged(mid: mid, reasonCode: reason))
            }
            mosquitto_subscribe_v5_callback_set(handle) { _, obj, _, _, _, _ in
                guard let obj else { return }
                MosquittoClient.from(obj).deliver(.subscribed)
            }
            mosquitto_message_v5_callback_set(handle) { _, obj, message, properties in
                guard let obj, let message else { return }
                MosquittoClient.from(obj).deliver(.message(IncomingMessage(message.pointee, properties: properties)))
            }
        } else {
            mosquitto_connect_callback_set(handle) { _, obj, rc in
                guard let obj else { return }
                MosquittoClient.from(obj).connected(code: rc)
            }
            mosquitto_disconnect_callback_set(handle) { _, obj, rc in
                let saved = errno
                guard let obj else { return }
                MosquittoClient.from(obj).disconnected(rc: rc, errno: saved)
            }
            mosquitto_publish_callback_set(handle) { _, obj, mid in
                guard let obj else { return }
                MosquittoClient.from(obj).deliver(.acknowledged(mid: mid, reasonCode: 0))
            }
        }
    }

    private static func from(_ obj: UnsafeMutableRawPointer) -> MosquittoClient {
        Unmanaged<MosquittoClient>.fromOpaque(obj).takeUnretainedValue()
    }

    private func deliver(_ event: MosquittoEvent) {
        let box = handler.withLock { $0 }
        box?.body(event)
    }

    private func connected(code: Int32) {
        if code == 0 {
            accepted.store(true, ordering: .releasing)
            if !forwardDebugLog { setLibraryLog(false) }
        }
        deliver(.connected(code: code))
    }

    private let disconnectReported = Atomic<Bool>(false)

    private func disconnected(rc: Int32, errno saved: Int32) {
        disconnectReported.store(true, ordering: .releasing)
        deliver(.disconnected(rc: rc, errno: saved))
    }

    /// The last error libmosquitto logged (OpenSSL's reason for a failed handshake, for instance).
    var lastLoggedError: String? { loggedError.withLock { $0 } }
    private let loggedError = Mutex<String?>(nil)

    /// Starts the network thread, which connects, drives libmosquitto's external loop and reconnects with backoff
    /// until `stop`.
    ///
    /// Why not `mosquitto_loop_start`: its thread runs `mosquitto_loop_forever`, which retries failed reconnects
    /// without any callback (a refused TCP connect or a failed TLS handshake is invisible to the caller) and
    /// returns for good after MOSQ_ERR_TLS, MOSQ_ERR_PROTOCOL (an MQTT 5 refusal) and others (lib/loop.c),
    /// leaving a daemon that never reconnects. This thread is the same loop with every failure reported and
    /// no way to end but `stop`; `mosquitto_threaded_set` tells libmosquitto that a thread of ours drives it,
    /// so `mosquitto_publish` from other threads only queues and wakes it. (libmosquitto still writes a byte to its
    /// own internal wake-up pair for every queued packet; nothing reads that pair outside `mosquitto_loop`, so once
    /// it is full each such write fails at once with EAGAIN: one cheap syscall per packet, measured in
    /// Benchmarks/README.md, and no private state of the library is touched.)
    func start() throws(MQTTError) {
        try call("mosquitto_threaded_set") { mosquitto_threaded_set($0, true) }
        let thread = Thread { [self] in
            setCurrentThreadName("gw-mqtt")
            networkThread.store(UInt(pthread_self()), ordering: .releasing)
            runNetworkLoop()
            finished.signal()
        }
        thread.start()
    }

    private let finished = DispatchSemaphore(value: 0)
    private let wakeUp = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)
    /// Set by the connect callback, so the backoff starts over after a connection that was accepted.
    let accepted = Atomic<Bool>(false)

    private func runNetworkLoop() {
        let settings = settings
        let keepalive = Int32(clamping: settings.keepalive.components.seconds)
        var failures = 0
        var first = true
        while !stopping.load(ordering: .acquiring) {
            // Blocking connect on this thread: DNS, TCP and the TLS handshake; then CONNECT is queued.
            setLibraryLog(true)
            let rc = first ? connectFirst(keepalive: keepalive) : mosquitto_reconnect(handle)
            let saved = errno
            first = false
            if rc == Int32(MOSQ_ERR_SUCCESS.rawValue) {
                disconnectReported.store(false, ordering: .releasing)
                let (loop, loopErrno) = serveConnection()
                if accepted.exchange(false, ordering: .acquiringAndReleasing) { failures = 0 }
                // A TLS handshake that fails inside mosquitto_loop_read ends it without a disconnect callback.
                if !disconnectReported.load(ordering: .acquiring), loop != Int32(MOSQ_ERR_NO_CONN.rawValue) {
                    deliver(.disconnected(rc: loop, errno: loopErrno))
                }
            } else {
                deliver(.disconnected(rc: rc, errno: saved))
            }
            guard !stopping.load(ordering: .acquiring) else { break }
            let low = settings.reconnectDelay.lowerBound, high = settings.reconnectDelay.upperBound
            let delay = min(high, low * (1 << min(failures, 16)))
            failures += 1
            _ = wakeUp.wait(timeout: .now() + .milliseconds(Int(delay / .milliseconds(1))))
        }
    }

    /// One connection, driven through libmosquitto's documented external-loop API: `poll` on `mosquitto_socket` and
    /// our own wake-up pipe, then `mosquitto_loop_read`, `mosquitto_loop_write` while `mosquitto_want_write`, and
    /// `mosquitto_loop_misc` (keepalive). Returns the first failing call's `MOSQ_ERR_*` and errno; `MOSQ_ERR_NO_CONN`
    /// once the socket is closed (after our DISCONNECT, or a lost link the read already reported).
    private func serveConnection() -> (rc: Int32, errno: Int32) {
        let success = Int32(MOSQ_ERR_SUCCESS.rawValue)
        // Two pollfds for the connection's life: no allocation per round.
        let ready = UnsafeMutablePointer<pollfd>.allocate(capacity: 2)
        defer { ready.deallocate() }
        while true {
            let socket = mosquitto_socket(handle)
            guard socket >= 0 else { return (Int32(MOSQ_ERR_NO_CONN.rawValue), 0) }
            let writing = mosquitto_want_write(handle)
            ready[0] = pollfd(fd: socket, events: Int16(POLLIN) | (writing ? Int16(POLLOUT) : 0), revents: 0)
            ready[1] = pollfd(fd: wakePipe.reader, events: Int16(POLLIN), revents: 0)
            if poll(ready, 2, 1000) < 0, errno != EINTR { return (Int32(MOSQ_ERR_ERRNO.rawValue), errno) }
            if ready[1].revents != 0 { drainWakePipe() }
            // Cleared before looking at the queue (an exchange, not a store, so that what the waker queued before
            // setting it is visible below): a packet queued after this look writes a new byte and wakes the next poll.
            _ = wakePending.exchange(false, ordering: .sequentiallyConsistent)
            if ready[0].revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 {
                let rc = mosquitto_loop_read(handle, 1)
                guard rc == success else { return (rc, errno) }
            }
            // What the round queued (messages released by its PUBACKs, packets of its callbacks, what other threads
            // queued) goes out now, not after one more poll.
            if mosquitto_socket(handle) == socket, mosquitto_want_write(handle) {
                // Corked, the round's packets leave in one TCP segment instead of one each (the socket has
                // TCP_NODELAY): half the transmits of this thread. Uncorking sends at once; a socket the write closed
                // is left alone (its number may already be another file's).
                Self.cork(socket, true)
                let rc = mosquitto_loop_write(handle, 1)
                if mosquitto_socket(handle) == socket { Self.cork(socket, false) }
                guard rc == success else { return (rc, errno) }
            }
            let rc = mosquitto_loop_misc(handle)
            guard rc == success else { return (rc, errno) }
        }
    }

    private static func cork(_ socket: Int32, _ on: Bool) {
        var value: Int32 = on ? 1 : 0
        _ = setsockopt(socket, Int32(IPPROTO_TCP), TCP_CORK, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    /// The network thread's own wake-up: a non-blocking pipe it polls beside the broker socket. libmosquitto's
    /// `mosquitto_threaded_set` makes a publish from another thread only queue its packet, so that thread writes a
    /// byte here (`wakeNetworkThread`) and the network thread writes the packet.
    private let wakePipe: (reader: Int32, writer: Int32)
    /// Set by `wakeNetworkThread` when it writes a byte, cleared by the network thread after each poll: at most
    /// about one byte waits in the pipe.
    private let wakePending = Atomic<Bool>(false)
    /// The network thread (`pthread_self`), whose own calls (in callbacks) need no wake-up.
    private let networkThread = Atomic<UInt>(0)

    private static func makeWakePipe(broker: String) throws(MQTTError) -> (reader: Int32, writer: Int32) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            let saved = errno
            throw MQTTError(kind: .system, code: saved, call: "pipe", broker: broker,
                            message: "broker \(broker): cannot create the MQTT thread's wake-up pipe: "
                                + sentenceCase(String(cString: strerror(saved))))
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        return (fds[0], fds[1])
    }

    private func drainWakePipe() {
        var sink = [UInt8](repeating: 0, count: 64)
        while read(wakePipe.reader, &sink, sink.count) > 0 {}
    }

    /// Makes the network thread's `poll` return so that it writes what was queued: called after a call from another
    /// thread that may have queued a packet (a publish, subscribe, disconnect). On the network thread itself, or with
    /// a byte already waiting, it does nothing.
    func wakeNetworkThread() {
        guard networkThread.load(ordering: .acquiring) != UInt(pthread_self()),
              !wakePending.exchange(true, ordering: .sequentiallyConsistent) else { return }
        var byte: UInt8 = 0
        _ = write(wakePipe.writer, &byte, 1)
    }

    /// `mosquitto_disconnect` has been called (or the link is gone): lets the network thread end and waits up to
    /// `timeout` for it.
    func stopNetworkThread(timeout: Duration) -> Bool {
        stopping.store(true, ordering: .releasing)
        wakeUp.signal()
        return finished.wait(timeout: .now() + .milliseconds(Int(timeout / .milliseconds(1)))) == .success
    }

    /// The outcome of `mosquitto_publish`.
    enum PublishOutcome: Sendable, Equatable {
        /// Handed to the network thread under message id `mid`.
        case sent(mid: Int32)
        /// `MOSQ_ERR_NO_CONN`: libmosquitto 2.0 still keeps a QoS 1 message in its outgoing queue and sends it
        /// after the next CONNACK, so it is in flight all the same.
        case queuedUntilConnected(mid: Int32)
        case failed(MQTTError)
    }

    /// What a payload is, for MQTT 5's Content Type property.
    enum PayloadKind: Sendable {
        /// `application/cloudevents+json`: a journalled event.
        case cloudEvent
        /// `application/json`: retained state and status.
        case json
    }

    /// MQTT 5 properties of every publication: Content Type and the UTF-8 Payload Format Indicator (1). Built once;
    /// `mosquitto_publish_v5` copies them into each message. nil with 3.1.1, which has no properties.
    private let cloudEventProperties: OpaquePointer?
    private let jsonProperties: OpaquePointer?

    private static func properties(contentType: String) -> OpaquePointer? {
        var list: OpaquePointer?
        mosquitto_property_add_string(&list, Int32(MQTT_PROP_CONTENT_TYPE.rawValue), contentType)
        mosquitto_property_add_byte(&list, Int32(MQTT_PROP_PAYLOAD_FORMAT_INDICATOR.rawValue), 1)
        return list
    }

    /// `mosquitto_publish_v5` with the payload's properties under MQTT 5, `mosquitto_publish` under 3.1.1
    /// (QoS from the caller, usually 1). With `wake` false the caller calls `wakeNetworkThread` after its batch.
    func publish(topic: String, payload: UnsafeRawBufferPointer, qos: Int32, retain: Bool,
                 kind: PayloadKind = .cloudEvent, wake: Bool = true) -> PublishOutcome {
        var mid: Int32 = 0
        // withCString: passing the String itself would copy it into a new array on every call.
        let (rc, saved) = topic.withCString { topic -> (Int32, Int32) in
            let rc = settings.protocolVersion == .v5
                ? mosquitto_publish_v5(handle, &mid, topic, Int32(payload.count), payload.baseAddress, qos, retain,
                                       kind == .cloudEvent ? cloudEventProperties : jsonProperties)
                : mosquitto_publish(handle, &mid, topic, Int32(payload.count), payload.baseAddress, qos, retain)
            return (rc, errno)
        }
        if wake { wakeNetworkThread() }
        switch rc {
        case Int32(MOSQ_ERR_SUCCESS.rawValue): return .sent(mid: mid)
        case Int32(MOSQ_ERR_NO_CONN.rawValue) where qos > 0 && mid != 0: return .queuedUntilConnected(mid: mid)
        default: return .failed(.library(rc, call: "mosquitto_publish", broker: settings.broker, errno: saved))
        }
    }

    /// `mosquitto_subscribe_v5` (MQTT 5) or `mosquitto_subscribe`; called again after every CONNACK, since the
    /// session is clean. MQTT 5 subscribes with Retain As Published: a retained message published while we are
    /// subscribed keeps its retain flag, so a retained command is recognised (and refused) at once, not only
    /// when it is replayed on the next subscription.
    func subscribe(topic: String, qos: Int32) throws(MQTTError) {
        if settings.protocolVersion == .v5 {
            let options = Int32(MQTT_SUB_OPT_RETAIN_AS_PUBLISHED.rawValue)
            try call("mosquitto_subscribe_v5") { mosquitto_subscribe_v5($0, nil, topic, qos, options, nil) }
        } else {
            try call("mosquitto_subscribe") { mosquitto_subscribe($0, nil, topic, qos) }
        }
        wakeNetworkThread()
    }

    /// `mosquitto_publish_v5` with the properties of a request or a reply (Response Topic, Correlation Data,
    /// user properties); retained only for a collector's receipts (SPEC 4.3).
    func publishV5(topic: String, payload: UnsafeRawBufferPointer, qos: Int32,
                   properties request: RequestProperties) -> PublishOutcome {
        var properties: OpaquePointer?
        defer { mosquitto_property_free_all(&properties) }
        if let correlationData = request.correlationData {
            _ = correlationData.withUnsafeBytes {
                mosquitto_property_add_binary(&properties, Int32(MQTT_PROP_CORRELATION_DATA.rawValue), $0.baseAddress,
                                              UInt16(clamping: $0.count))
            }
        }
        if let responseTopic = request.responseTopic {
            _ = mosquitto_property_add_string(&properties, Int32(MQTT_PROP_RESPONSE_TOPIC.rawValue), responseTopic)
        }
        for (name, value) in request.userProperties {
            _ = mosquitto_property_add_string_pair(&properties, Int32(MQTT_PROP_USER_PROPERTY.rawValue), name, value)
        }
        if let contentType = request.contentType {
            _ = mosquitto_property_add_string(&properties, Int32(MQTT_PROP_CONTENT_TYPE.rawValue), contentType)
            _ = mosquitto_property_add_byte(&properties, Int32(MQTT_PROP_PAYLOAD_FORMAT_INDICATOR.rawValue), 1)
        }
        var mid: Int32 = 0
        let rc = mosquitto_publish_v5(handle, &mid, topic, Int32(payload.count), payload.baseAddress, qos, request.retain, properties)
        let saved = errno
        wakeNetworkThread()
        switch rc {
        case Int32(MOSQ_ERR_SUCCESS.rawValue): return .sent(mid: mid)
        case Int32(MOSQ_ERR_NO_CONN.rawValue) where qos > 0 && mid != 0: return .queuedUntilConnected(mid: mid)
        default: return .failed(.library(rc, call: "mosquitto_publish_v5", broker: settings.broker, errno: saved))
        }
    }

    /// The first CONNECT; with MQTT 5 it carries the Session Expiry Interval and Maximum Packet Size properties,
    /// which libmosquitto keeps for its reconnects.
    private func connectFirst(keepalive: Int32) -> Int32 {
        guard settings.protocolVersion == .v5, settings.sessionExpirySeconds > 0 || settings.maximumPacketSize != nil else {
            return mosquitto_connect(handle, settings.host, Int32(settings.port), keepalive)
        }
        var properties: OpaquePointer?
        defer { mosquitto_property_free_all(&properties) }
        if settings.sessionExpirySeconds > 0 {
            _ = mosquitto_property_add_int32(&properties, Int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL.rawValue), settings.sessionExpirySeconds)
        }
        if let maximumPacketSize = settings.maximumPacketSize {
            _ = mosquitto_property_add_int32(&properties, Int32(MQTT_PROP_MAXIMUM_PACKET_SIZE.rawValue), maximumPacketSize)
        }
        return mosquitto_connect_bind_v5(handle, settings.host, Int32(settings.port), keepalive, nil, properties)
    }

    /// `mosquitto_disconnect` (MQTT 5: reason 0, normal disconnection): the broker discards the Will. The network
    /// thread ends when the connection closes instead of reconnecting after its backoff: a reconnect between this
    /// and `stopNetworkThread` would bring the gateway back online after its offline status.
    func disconnect() throws(MQTTError) {
        stopping.store(true, ordering: .releasing)
        if settings.protocolVersion == .v5 {
            try call("mosquitto_disconnect_v5") { mosquitto_disconnect_v5($0, 0, nil) }
        } else {
            try call("mosquitto_disconnect") { mosquitto_disconnect($0) }
        }
        wakeNetworkThread()
    }

    /// Test support: ends the TCP connection without a DISCONNECT, as a crash or a pulled cable would, so the
    /// broker publishes the Will; the network thread then stops instead of reconnecting.
    func abortWithoutDisconnect() {
        stopping.store(true, ordering: .releasing)
        let fd = mosquitto_socket(handle)
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
    }
}
