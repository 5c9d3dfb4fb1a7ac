import Foundation
import Synchronization

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One GET streamed into a file with a size bound: the transfer is cut off as soon as it passes `maximumBytes` (or
/// announces more in Content-Length), so an oversized or endless answer never fills the disk. Task cancellation
/// cancels the transfer.
final class BoundedDownload: NSObject, URLSessionDataDelegate, Sendable {
    enum Outcome: Sendable {
        case completed(status: Int)
        case tooLarge
        case failed(String)
    }

    private struct State {
        var handle: FileHandle?
        var received: Int64 = 0
        var status = 0
        var tooLarge = false
        var writeError: String?
        var continuation: CheckedContinuation<Outcome, Never>?
    }

    private let maximumBytes: Int64
    private let state = Mutex(State())

    private init(path: String, maximumBytes: Int64) throws {
        self.maximumBytes = maximumBytes
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        state.withLock { $0.handle = handle }
    }

    /// GETs `request` into `path`; at most `maximumBytes` are written.
    static func run(_ request: URLRequest, to path: String, maximumBytes: Int64) async throws -> Outcome {
        let download = try BoundedDownload(path: path, maximumBytes: maximumBytes)
        let session = URLSession(configuration: .ephemeral, delegate: download, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        let task = session.dataTask(with: request)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                download.state.withLock { $0.continuation = continuation }
                task.resume()
            }
        } onCancel: {
            task.cancel()
        }
    }

    func urlSession(
        _ session: URLSession,
        dataTask: URLSessionDataTask,
        didReceive response: URLResponse,
        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void
    ) {
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let announced = response.expectedContentLength
        let tooLarge = (200..<300).contains(status) && announced > maximumBytes
        state.withLock { state in
            state.status = status
            state.tooLarge = tooLarge
        }
        completionHandler(tooLarge ? .cancel : .allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let cancel = state.withLock { state -> Bool in
            guard !state.tooLarge, state.writeError == nil else { return true }
            state.received += Int64(data.count)
            if state.received > maximumBytes {
                state.tooLarge = true
                return true
            }
            do { try state.handle?.write(contentsOf: data) } catch { state.writeError = "\(error)" }
            return state.writeError != nil
        }
        if cancel { dataTask.cancel() }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        let (continuation, outcome) = state.withLock { state -> (CheckedContinuation<Outcome, Never>?, Outcome) in
            try? state.handle?.close()
            state.handle = nil
            let outcome: Outcome
            if state.tooLarge {
                outcome = .tooLarge
            } else if let writeError = state.writeError {
                outcome = .failed("cannot write the download: \(writeError)")
            } else if let error {
                outcome = .failed(error.localizedDescription)
            } else {
                outcome = .completed(status: state.status)
            }
            defer { state.continuation = nil }
            return (state.continuation, outcome)
        }
        continuation?.resume(returning: outcome)
    }
}
