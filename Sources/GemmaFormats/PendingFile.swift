// A file written under a temporary name beside its final path and renamed onto it only once complete, so that a
// failed or interrupted write never leaves a partial file under the final name. The streaming writers use it.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An output file that appears under its final name only when `commit()` succeeds.
final class PendingFile {
    let path: String
    let temporaryPath: String
    private var handle: UnsafeMutablePointer<FILE>?
    private(set) var bytesWritten = 0

    /// Creates `path` + ".tmp-<pid>" for writing.
    init(path: String) throws(FormatError) {
        self.path = path
        temporaryPath = path + ".tmp-\(getpid())"
        guard let f = fopen(temporaryPath, "wb") else {
            throw .io(path: temporaryPath, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
        handle = f
    }

    deinit { discard() }

    func write(_ bytes: UnsafeRawBufferPointer) throws(FormatError) {
        guard let handle else { throw .io(path: temporaryPath, reason: "written after it was closed") }
        guard bytes.count > 0 else { return }
        guard fwrite(bytes.baseAddress, 1, bytes.count, handle) == bytes.count else {
            let reason = "write failed after \(bytesWritten) bytes: \(String(cString: strerror(errno)))"
            discard()
            throw .io(path: temporaryPath, reason: reason)
        }
        bytesWritten += bytes.count
    }

    func write(_ bytes: [UInt8]) throws(FormatError) {
        var failure: FormatError?
        bytes.withUnsafeBytes { b in
            do throws(FormatError) { try write(b) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Flushes the file to disk and renames it to `path`.
    func commit() throws(FormatError) {
        guard let f = handle else { throw .io(path: temporaryPath, reason: "committed after it was closed") }
        handle = nil
        let flushed = fflush(f) == 0 && fsync(fileno(f)) == 0
        let reason = String(cString: strerror(errno))
        guard fclose(f) == 0, flushed else {
            unlink(temporaryPath)
            throw .io(path: temporaryPath, reason: "cannot flush to disk: \(reason)")
        }
        guard rename(temporaryPath, path) == 0 else {
            let reason = "cannot rename \(temporaryPath): \(String(cString: strerror(errno)))"
            unlink(temporaryPath)
            throw .io(path: path, reason: reason)
        }
    }

    /// Closes and deletes the temporary file (nothing once committed).
    func discard() {
        guard let f = handle else { return }
        handle = nil
        fclose(f)
        unlink(temporaryPath)
    }
}

/// A writer that takes a file's tensor bytes in order, in pieces of any size (GGUFStreamWriter, SafetensorsStreamWriter).
public protocol TensorByteStream: AnyObject {
    /// Appends the next piece of tensor bytes.
    func write(_ bytes: UnsafeRawBufferPointer) throws(FormatError)
}

extension TensorByteStream {
    /// Appends the next piece of tensor bytes.
    public func write(_ bytes: [UInt8]) throws(FormatError) {
        var failure: FormatError?
        bytes.withUnsafeBytes { b in
            do throws(FormatError) { try write(b) } catch { failure = error }
        }
        if let failure { throw failure }
    }
}
