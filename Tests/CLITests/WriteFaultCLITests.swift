import Foundation
import Testing
@testable import Compress

/// Faults while `compressor` writes its output: a file-size limit, a full disk,
/// an unwritable directory, SIGINT and SIGTERM during the write. Each leaves the
/// previous file byte for byte (and its permission bits) and no temporary file,
/// says what happened, and exits 1 (130 and 143 for the signals).
///
/// Mounting a tmpfs (full disk, read-only directory) and `chattr +i` need root
/// and a container that allows them; where they do not work the test falls
/// back to the variant that always works (a file-size limit, a path under a
/// regular file) and says so, so every test checks something everywhere.
@Suite struct WriteFaultCLITests {
    let cli = CLITests()

    /// Exit status and output of a finished process.
    struct Finished {
        var status: Int32
        var reason: Process.TerminationReason
        var stdout: String
        var stderr: String
    }

    /// A process started with its output going to files, so the test can poll them while it runs.
    struct Running {
        let process: Process
        let stdoutPath: String, stderrPath: String

        var stderr: String { String(decoding: FileManager.default.contents(atPath: stderrPath) ?? Data(), as: UTF8.self) }

        func wait() -> Finished {
            process.waitUntilExit()
            return Finished(status: process.terminationStatus, reason: process.terminationReason,
                            stdout: String(decoding: FileManager.default.contents(atPath: stdoutPath) ?? Data(), as: UTF8.self),
                            stderr: stderr)
        }
    }

    /// Starts `executable` with `arguments` and `environment` added to this process's.
    func start(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Running {
        let logs = try cli.tempDir().path
        let (stdoutPath, stderrPath) = (logs + "/stdout", logs + "/stderr")
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        try p.run()
        return Running(process: p, stdoutPath: stdoutPath, stderrPath: stderrPath)
    }

    /// `compressor arguments` with the file-size limit `kilobytes` (`ulimit -f`, 1024-byte blocks in bash).
    func runLimited(kilobytes: Int, _ arguments: [String]) throws -> Finished {
        try start("/bin/bash", ["-c", "ulimit -f \(kilobytes) && exec \"$0\" \"$@\"", CLITests.binary.path] + arguments).wait()
    }

    /// Runs a setup command (mount, chattr, ...); true when it succeeded.
    @discardableResult
    func system(_ executable: String, _ arguments: [String]) throws -> Bool {
        let r = try start(executable, arguments).wait()
        return r.reason == .exit && r.status == 0
    }

    /// Polls `condition` every 20 ms for up to `seconds` (generous: the machine may be loaded); its last value.
    func eventually(seconds: Double = 300, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    /// The names in `dir`, sorted.
    func listing(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    /// The permission bits of `path`.
    func mode(_ path: String) -> mode_t {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o7777 : 0
    }

    /// A lenet5 model (1,722,872 bytes) at `path` with permission bits 0640; its bytes.
    @discardableResult
    func previousModel(_ path: String, seed: Int = 1) throws -> Data {
        try cli.runOK(["init", "--arch", "lenet5", "--seed", "\(seed)", "-o", path])
        #expect(chmod(path, 0o640) == 0)
        return try #require(FileManager.default.contents(atPath: path))
    }

    /// `path` still holds `bytes` with mode 0640, and `dir` holds exactly `names` (so no temporary file).
    func expectKept(_ path: String, _ bytes: Data, in dir: String, names: [String], _ what: String,
                    sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(FileManager.default.contents(atPath: path) == bytes, "\(what): \(path) changed", sourceLocation: sourceLocation)
        #expect(mode(path) == 0o640, "\(what): mode \(String(mode(path), radix: 8))", sourceLocation: sourceLocation)
        #expect(listing(dir) == names.sorted(), "\(what): \(listing(dir))", sourceLocation: sourceLocation)
    }

    /// Whether a tmpfs of `size` (mount's syntax, e.g. "2m") can be mounted at `dir` (then it is).
    func mountTmpfs(_ dir: String, size: String) throws -> Bool {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/bin/mount") else { return false }
        return try system("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "compressor-test", dir])
    }

    // MARK: Full disk

    static let tooLarge = "File too large (over the file-size limit, see `ulimit -f`, or the file system's largest file)"

    /// `init` over a model in `dir` under `ulimit -f kilobytes`: exit 1, the
    /// message, the model kept with its permission bits, no temporary file.
    func expectRefusedOverFileSizeLimit(kilobytes: Int, in dir: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = dir + "/model.bin"
        let before = try previousModel(path)
        let r = try runLimited(kilobytes: kilobytes, ["init", "--arch", "lenet5", "--seed", "2", "-o", path])
        #expect(r.reason == .exit && r.status == 1, "\(r.status) \(r.reason) \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr == "Error: cannot write \(path): write failed: \(Self.tooLarge); \(path) is unchanged\n",
                sourceLocation: sourceLocation)
        expectKept(path, before, in: dir, names: ["model.bin"], "ulimit -f \(kilobytes)", sourceLocation: sourceLocation)
    }

    /// A write past `ulimit -f` fails with EFBIG (the CLI ignores SIGXFSZ, which
    /// would kill it and leave the temporary file): exit 1, one message, the
    /// previous file kept; a new file is not created.
    @Test func fileSizeLimitLeavesThePreviousFile() throws {
        let dir = try cli.tempDir().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try expectRefusedOverFileSizeLimit(kilobytes: 64, in: dir)

        let fresh = dir + "/fresh.bin"
        let n = try runLimited(kilobytes: 64, ["init", "--arch", "lenet5", "--seed", "2", "-o", fresh])
        #expect(n.reason == .exit && n.status == 1, "\(n.status) \(n.reason) \(n.stderr)")
        #expect(n.stderr == "Error: cannot write \(fresh): write failed: \(Self.tooLarge); nothing was written\n")
        #expect(listing(dir) == ["model.bin"])
    }

    /// A 2 MiB tmpfs holding one lenet5 model has no room for the temporary
    /// copy of another: ENOSPC, the previous file kept. Where mounting is not
    /// possible, the same checks run against a file-size limit instead.
    @Test func fullDiskLeavesThePreviousFile() throws {
        let dir = try cli.tempDir().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let disk = dir + "/disk"
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: false)
        guard try mountTmpfs(disk, size: "2m") else {
            print("WriteFaultCLITests: cannot mount a tmpfs here; a full disk is simulated with `ulimit -f` instead")
            try expectRefusedOverFileSizeLimit(kilobytes: 1, in: disk)
            return
        }
        defer { _ = try? system("/bin/umount", [disk]) }
        let path = disk + "/model.bin"
        let before = try previousModel(path)
        let full = String(cString: strerror(ENOSPC))
        let r = try cli.run(["init", "--arch", "lenet5", "--seed", "2", "-o", path])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr == "Error: cannot write \(path): write failed: \(full); \(path) is unchanged\n")
        expectKept(path, before, in: disk, names: ["model.bin"], "full tmpfs")

        let fresh = disk + "/fresh.onnx"
        let n = try cli.run(["convert", path, "-o", fresh])
        #expect(n.status == 1, "\(n.stderr)")
        #expect(n.stderr == "Error: cannot write \(fresh): write failed: \(full); nothing was written\n")
        expectKept(path, before, in: disk, names: ["model.bin"], "full tmpfs, new file")
    }

    // MARK: Unwritable directory

    /// The output's directory cannot take a new file: a path under a regular
    /// file (always; root too), a read-only file system (where a tmpfs can be
    /// mounted), an immutable directory (where `chattr +i` works) and a
    /// read-only directory (when not root). Exit 1, the reason, the previous
    /// file kept, nothing created.
    @Test func unwritableDirectoryLeavesThePreviousFile() throws {
        let dir = try cli.tempDir().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/file.txt"
        try cli.put(file, Data("not a directory\n".utf8))
        let under = file + "/model.bin"
        let r = try cli.run(["init", "--arch", "lenet5", "--seed", "2", "-o", under])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr == "Error: cannot write \(under): create temporary file failed: \(String(cString: strerror(ENOTDIR))); nothing was written\n")
        #expect(FileManager.default.contents(atPath: file) == Data("not a directory\n".utf8))
        #expect(listing(dir) == ["file.txt"])

        /// Runs `init` over the model in `directory` made unwritable by `lock`; expects `reason`.
        func refused(_ directory: String, _ what: String, reason code: Int32, lock: () throws -> Bool, unlock: () throws -> Void) throws {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let path = directory + "/model.bin"
            let before = try previousModel(path)
            guard try lock() else {
                print("WriteFaultCLITests: \(what) is not possible here; skipped that variant")
                return
            }
            defer { try? unlock() }
            let r = try cli.run(["init", "--arch", "lenet5", "--seed", "2", "-o", path])
            #expect(r.status == 1, "\(what): \(r.stderr)")
            #expect(r.stderr == "Error: cannot write \(path): create temporary file failed: \(String(cString: strerror(code))); \(path) is unchanged\n",
                    "\(what)")
            expectKept(path, before, in: directory, names: ["model.bin"], what)
        }

        let readOnly = dir + "/read-only"
        try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: false)
        if try mountTmpfs(readOnly, size: "4m") {
            defer { _ = try? system("/bin/umount", [readOnly]) }
            try refused(readOnly, "a read-only file system", reason: EROFS,
                        lock: { try system("/bin/mount", ["-o", "remount,ro", readOnly]) },
                        unlock: {})
        } else {
            print("WriteFaultCLITests: cannot mount a tmpfs here; skipped the read-only file system variant")
        }
        let immutable = dir + "/immutable"
        try refused(immutable, "chattr +i", reason: EPERM,
                    lock: { try system("/usr/bin/env", ["chattr", "+i", immutable]) },
                    unlock: { try system("/usr/bin/env", ["chattr", "-i", immutable]) })
        if getuid() != 0 {
            let locked = dir + "/locked"
            try refused(locked, "chmod 555", reason: EACCES,
                        lock: { chmod(locked, 0o555) == 0 }, unlock: { _ = chmod(locked, 0o755) })
        }
    }

    // MARK: Signals

    /// A command whose writes wait, once their temporary file is complete, until
    /// the test opens the gate (the test-only hook `COMPRESSOR_TEST_WRITE_GATE`),
    /// so a signal surely comes while a write is in progress.
    struct HeldWrite {
        let running: Running
        let gate: String
        var pid: pid_t { running.process.processIdentifier }
        /// Lets the write finish.
        func release() { unlink(gate) }
        /// Waits for the command to end; opens the gate after five minutes, so a
        /// signal that did not end it fails the test instead of hanging it.
        func wait() -> Finished {
            let deadline = Date().addingTimeInterval(300)
            while running.process.isRunning && Date() < deadline { usleep(20_000) }
            release()
            return running.wait()
        }
    }

    /// Starts `compressor arguments` with its writes held and returns once the temporary file of `path` exists.
    func startHeldWrite(_ arguments: [String], writing path: String) throws -> HeldWrite {
        let directory = (path as NSString).deletingLastPathComponent, name = (path as NSString).lastPathComponent
        let gate = try cli.tempDir().path + "/gate"
        try cli.put(gate, Data())
        let running = try start(CLITests.binary.path, arguments, environment: ["COMPRESSOR_TEST_WRITE_GATE": gate])
        let appeared = eventually { listing(directory).contains { $0.hasPrefix(".\(name).tmp-") } || !running.process.isRunning }
        #expect(appeared && running.process.isRunning, "no temporary file for \(path): \(running.stderr)")
        return HeldWrite(running: running, gate: gate)
    }

    /// SIGINT (no Ctrl-C handler of its own: `init`) and SIGTERM while a write is
    /// in progress: the temporary file is removed, the previous file kept, the
    /// message says so, and the exit status is 128 + the signal.
    @Test(arguments: [SIGINT, SIGTERM])
    func signalDuringAWriteLeavesThePreviousFile(_ signo: Int32) throws {
        let dir = try cli.tempDir().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/model.bin"
        let before = try previousModel(path)
        let running = try startHeldWrite(["init", "--arch", "lenet5", "--seed", "2", "-o", path], writing: path)
        #expect(kill(running.pid, signo) == 0)
        let r = running.wait()
        #expect(r.reason == .exit && r.status == 128 + signo, "\(r.status) \(r.reason) \(r.stderr)")
        #expect(r.stderr == "\ninterrupted while writing \(path); \(path) is unchanged\n")
        #expect(r.stdout.isEmpty)
        expectKept(path, before, in: dir, names: ["model.bin"], "signal \(signo)")

        let fresh = dir + "/fresh.bin"
        let second = try startHeldWrite(["init", "--arch", "lenet5", "--seed", "2", "-o", fresh], writing: fresh)
        #expect(kill(second.pid, signo) == 0)
        let n = second.wait()
        #expect(n.reason == .exit && n.status == 128 + signo, "\(n.status) \(n.reason) \(n.stderr)")
        #expect(n.stderr == "\ninterrupted while writing \(fresh); nothing was written\n")
        expectKept(path, before, in: dir, names: ["model.bin"], "signal \(signo), new file")
    }

    /// A command with its own Ctrl-C handling (a pass: `prune`): the first
    /// Ctrl-C during the write only asks to stop after the current work, so the
    /// write completes (the same bytes as an undisturbed run); a second one
    /// ends the process with the previous file kept.
    @Test func ctrlCDuringAPassWriteFinishesItOrAbandonsIt() throws {
        let dir = try cli.tempDir().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = dir + "/input.bin", reference = dir + "/reference.bin", path = dir + "/model.bin"
        try cli.runOK(["init", "--arch", "lenet5", "--seed", "3", "-o", input])
        let prune = ["prune", input, "--layer-sparsity", "fc1=0.9,fc2=0.9", "-o"]
        try cli.runOK(prune + [reference])
        let pruned = try #require(FileManager.default.contents(atPath: reference))
        let stopping = "\nstopping after this batch (Ctrl-C again to quit now)\n"

        // Twice: the second Ctrl-C ends it.
        let before = try previousModel(path)
        let held = try startHeldWrite(prune + [path], writing: path)
        #expect(kill(held.pid, SIGINT) == 0)
        #expect(eventually { held.running.stderr.contains(stopping) }, "\(held.running.stderr)")
        #expect(kill(held.pid, SIGINT) == 0)
        let r = held.wait()
        #expect(r.reason == .exit && r.status == 130, "\(r.status) \(r.reason) \(r.stderr)")
        #expect(r.stderr == stopping + "\ninterrupted while writing \(path); \(path) is unchanged\n")
        expectKept(path, before, in: dir, names: ["input.bin", "model.bin", "reference.bin"], "Ctrl-C twice")

        // Once: the write completes when the gate opens.
        let once = try startHeldWrite(prune + [path], writing: path)
        #expect(kill(once.pid, SIGINT) == 0)
        #expect(eventually { once.running.stderr.contains(stopping) }, "\(once.running.stderr)")
        once.release()
        let o = once.wait()
        #expect(o.reason == .exit && o.status == 0, "\(o.status) \(o.reason) \(o.stderr)")
        #expect(o.stderr == stopping)
        #expect(o.stdout.contains("wrote \(path) ("), "\(o.stdout)")
        #expect(FileManager.default.contents(atPath: path) == pruned)
        #expect(mode(path) == 0o640)
        #expect(listing(dir) == ["input.bin", "model.bin", "reference.bin"])
    }

    // MARK: Permissions

    /// A model file (native and ONNX) replaced by a command keeps its permission bits.
    @Test func replacedModelFileKeepsItsPermissions() throws {
        let dir = try cli.tempDir().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (path, onnx) = (dir + "/model.bin", dir + "/model.onnx")
        let before = try previousModel(path)
        try cli.put(onnx, Data("old".utf8))
        for mode in [0o640, 0o600, 0o755] as [mode_t] {
            #expect(chmod(path, mode) == 0 && chmod(onnx, mode) == 0)
            try cli.runOK(["init", "--arch", "lenet5", "--seed", "2", "-o", path])
            try cli.runOK(["convert", path, "-o", onnx])
            #expect(self.mode(path) == mode, "model.bin: \(String(self.mode(path), radix: 8))")
            #expect(self.mode(onnx) == mode, "model.onnx: \(String(self.mode(onnx), radix: 8))")
        }
        #expect(FileManager.default.contents(atPath: path) != before)
        try cli.runOK(["info", path])
        #expect(listing(dir) == ["model.bin", "model.onnx"])
    }
}
