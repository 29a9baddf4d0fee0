/// A callback run on libmosquitto's network thread, boxed: a closure kept in a `Mutex` is re-abstracted and written
/// back on every `withLock`, wrapping one more thunk around it per call (measured: the publish rate fell with each
/// message). A class reference passes through unchanged.
final class Callback<Argument>: Sendable {
    let body: @Sendable (Argument) -> Void
    init(_ body: @escaping @Sendable (Argument) -> Void) { self.body = body }
}
