/// Runs blocking work (libmodbus, serial I/O, SQLite, joining threads) on a thread of its own, never on Swift's
/// cooperative pool, and returns its result to the awaiting task.
public func onDedicatedThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        JoinableThread {
            continuation.resume(with: Result { try body() })
        }.detach()
    }
}

/// `onDedicatedThread` for work that cannot fail.
public func onDedicatedThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        JoinableThread {
            continuation.resume(returning: body())
        }.detach()
    }
}
