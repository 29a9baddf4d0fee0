/// Hands the heap pages freed by a burst of short-lived allocations back to the kernel.
///
/// Loading a configuration parses every device's profile YAML and builds the runtime's tables: megabytes of
/// short-lived nodes, strings and arrays, spread over the arenas of the threads that made them. glibc keeps the
/// freed pages of its arenas mapped, so without this the daemon's RSS stays at that peak for its lifetime. glibc's
/// `malloc_trim(0)` releases every free page of every arena; called once after start and after each reload, never
/// on the hot path.
public func returnFreedMemoryToTheSystem() {
    #if os(Linux)
    _ = glibcMallocTrim(0)
    #endif
}

#if os(Linux)
// <malloc.h> is not part of Swift's Glibc module.
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
#endif
