import Compress
import Foundation

/// Makes Ctrl-C raise `flag` instead of killing the process (a second Ctrl-C still kills it).
func installInterruptHandler(_ flag: CancellationFlag) -> DispatchSourceSignal {
    signal(SIGINT, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    source.setEventHandler {
        if flag.isCancelled { exit(130) }
        flag.cancel()
        FileHandle.standardError.write(Data("\nstopping after this batch (Ctrl-C again to quit now)\n".utf8))
    }
    source.resume()
    return source
}
