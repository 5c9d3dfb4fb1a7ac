/// Waits, in bounded steps, for something another task brings about (for example an endpoint controller finishing a
/// deployment): checks `condition` up to `attempts` times, sleeping `interval` between checks.
/// - Returns: whether `condition` became true; false once the attempts are used up (or the task is cancelled).
public func poll(
    attempts: Int = 2000,
    interval: Duration = .milliseconds(5),
    until condition: () throws -> Bool
) async rethrows -> Bool {
    for attempt in 0..<attempts {
        if try condition() { return true }
        if attempt + 1 < attempts {
            do { try await Task.sleep(for: interval) } catch { return try condition() }
        }
    }
    return false
}
