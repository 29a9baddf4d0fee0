func journalBenchmark(events: Int) {
    print("journal benchmark: not yet")
}
