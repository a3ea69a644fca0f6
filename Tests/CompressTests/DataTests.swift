import Foundation
import Testing
@testable import Compress

/// A fresh temporary directory, removed when the returned closure runs.
func makeTemporaryDirectory(_ name: String = "data") throws -> String {
    let path = NSTemporaryDirectory() + "compress-\(name)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct IDXTests {
    let images = try! Tensor(shape: [3, 2, 2], storage: .uint8([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 254, 255]))

    @Test(arguments: [false, true]) func roundTripThroughFile(gzip: Bool) throws {
        let dir = try makeTemporaryDirectory("idx")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/images-idx3-ubyte" + (gzip ? ".gz" : "")
        try IDX.write(images, path: path, gzip: gzip)
        let raw = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect((raw.prefix(2) == Data([0x1F, 0x8B])) == gzip)  // gzip magic only when compressed
        #expect(try IDX.read(path: path) == images)
    }

    @Test func headerLayout() {
        let bytes = IDX.encode(images)
        #expect(Array(bytes[0..<16]) == [0, 0, 0x08, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2])
        #expect(bytes.count == 16 + 12)
    }

    @Test func floatAndInt32RoundTrip() throws {
        let floats = Tensor(shape: [2, 2], floats: [1.5, -2, 0.25, 1e-3])
        #expect(try IDX.decode(IDX.encode(floats)) == floats)
        let ints = Tensor(shape: [3], int64s: [-7, 0, 70_000])
        #expect(try IDX.decode(IDX.encode(ints)) == ints)
    }

    @Test func truncatedFileIsRefused() throws {
        let dir = try makeTemporaryDirectory("idx")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/short-idx3-ubyte"
        try writeFileBytes(Array(IDX.encode(images).dropLast(3)), path: path)
        #expect(throws: DataError.truncated(path: path, expectedBytes: 28, actualBytes: 25)) {
            try IDX.read(path: path)
        }
        let message = "\(DataError.truncated(path: path, expectedBytes: 28, actualBytes: 25))"
        #expect(message.contains(path) && message.contains("truncated"))
    }

    @Test func truncatedGzipStreamIsRefused() throws {
        let dir = try makeTemporaryDirectory("idx")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let big = try Tensor(shape: [64, 64], storage: .uint8((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) }))
        let path = dir + "/big-idx3-ubyte.gz"
        try IDX.write(big, path: path, gzip: true)
        let whole = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        try writeFileBytes(Array(whole.prefix(whole.count / 2)), path: path)
        do {
            _ = try IDX.read(path: path)
            Issue.record("a cut gzip stream was accepted")
        } catch {
            #expect(error.description.contains(path))
        }
    }

    @Test func badMagicTypeAndTrailingBytes() {
        #expect(throws: DataError.self) { try IDX.decode([1, 0, 8, 1, 0, 0, 0, 0]) }
        #expect(throws: DataError.unsupported(path: "IDX data", detail: "unknown IDX element type byte 0x07 (expected 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E)")) {
            try IDX.decode([0, 0, 7, 1, 0, 0, 0, 0])
        }
        #expect(throws: DataError.malformed(path: "IDX data", detail: "1 bytes follow the 9 bytes its header [1] announces")) {
            try IDX.decode([0, 0, 8, 1, 0, 0, 0, 1, 42, 43])
        }
    }

    @Test func missingFileIsNamed() {
        #expect(throws: DataError.cannotOpen(path: "/nonexistent/x-idx1-ubyte", reason: "no such file")) {
            try IDX.read(path: "/nonexistent/x-idx1-ubyte")
        }
    }
}

@Suite struct NPYTests {
    /// `numpy.save` of `np.array([[1.5, -2], [0.25, 3]], dtype='<f4')`: a
    /// version 1.0 header of 118 bytes (the dict, 58 spaces, a newline), then
    /// the little-endian floats.
    static let numpyBytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, 118, 0]
        + Array("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }".utf8)
        + [UInt8](repeating: 0x20, count: 58) + [0x0A]
        + [0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x80, 0x3E, 0x00, 0x00, 0x40, 0x40]

    @Test func decodesWhatNumpyWrites() throws {
        #expect(Self.numpyBytes.count == 144)
        let t = try NPY.decode(Self.numpyBytes)
        #expect(t == Tensor(shape: [2, 2], floats: [1.5, -2, 0.25, 3]))
    }

    @Test func encodesWhatNumpyWrites() {
        #expect(NPY.encode(Tensor(shape: [2, 2], floats: [1.5, -2, 0.25, 3])) == Self.numpyBytes)
    }

    @Test func roundTripsEveryDType() throws {
        let tensors: [Tensor] = [
            Tensor(shape: [2, 3, 1], floats: [0, 1, -1, .pi, 1e-30, 3e38]),
            Tensor(shape: [4], int64s: [-1, 0, 1, .max]),
            try Tensor(shape: [2, 2], storage: .uint8([0, 7, 128, 255])),
            try Tensor(shape: [3], storage: .int8([-128, 0, 127])),
            try Tensor(shape: [2], storage: .float16([0x3C00, 0xC000])),
            Tensor(shape: [], floats: [42]),
            Tensor(shape: [0, 5], floats: []),
        ]
        for t in tensors {
            let bytes = NPY.encode(t)
            #expect((bytes.count - t.denseByteCount) % 64 == 0, "data starts on a 64-byte boundary")
            #expect(try NPY.decode(bytes) == t)
        }
    }

    @Test func readsVersion2AndConvertsFloat64AndInt32() throws {
        func file(version: UInt8, descr: String, shape: String, data: [UInt8]) -> [UInt8] {
            var header = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }\n".utf8)
            let lengthBytes = version == 1 ? 2 : 4
            while (10 + lengthBytes - 2 + header.count) % 64 != 0 { header.insert(0x20, at: header.count - 1) }
            var length = withUnsafeBytes(of: UInt32(header.count).littleEndian, Array.init)
            length = Array(length.prefix(lengthBytes))
            return NPY.magic + [version, 0] + length + header + data
        }
        let f8 = (0..<2).flatMap { withUnsafeBytes(of: [0.5, -4.0][$0].bitPattern.littleEndian, Array.init) }
        #expect(try NPY.decode(file(version: 2, descr: "<f8", shape: "(2,)", data: f8)) == Tensor(shape: [2], floats: [0.5, -4]))
        let i4 = [Int32(-3), 9].flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }
        #expect(try NPY.decode(file(version: 1, descr: "<i4", shape: "(1, 2)", data: i4)) == Tensor(shape: [1, 2], int64s: [-3, 9]))
    }

    @Test func fortranOrderIsRefused() {
        var bytes = Self.numpyBytes
        let header = Array("{'descr': '<f4', 'fortran_order': True , 'shape': (2, 2), }".utf8)
        bytes.replaceSubrange(10..<(10 + header.count), with: header)
        #expect {
            try NPY.decode(bytes, source: "f.npy")
        } throws: { error in
            "\(error)".contains("fortran_order") && "\(error)".contains("f.npy")
        }
    }

    @Test func badInputsGiveClearErrors() {
        var badMagic = Self.numpyBytes
        badMagic[1] = UInt8(ascii: "X")
        #expect { try NPY.decode(badMagic) } throws: { "\($0)".contains("bad magic") }

        var badDType = Self.numpyBytes
        badDType.replaceSubrange(21..<24, with: Array(">f4".utf8))
        #expect { try NPY.decode(badDType) } throws: { "\($0)".contains("unsupported dtype '>f4'") }

        var badHeader = Self.numpyBytes
        badHeader.replaceSubrange(60..<61, with: Array("x".utf8))  // inside the shape tuple
        #expect { try NPY.decode(badHeader) } throws: { "\($0)".contains("bad header") }

        #expect(throws: DataError.truncated(path: "npy data", expectedBytes: 144, actualBytes: 140)) {
            try NPY.decode(Array(Self.numpyBytes.dropLast(4)))
        }
        #expect { try NPY.decode(Array(Self.numpyBytes.prefix(40))) } throws: { "\($0)".contains("truncated") }
    }

    @Test func fileRoundTrip() throws {
        let dir = try makeTemporaryDirectory("npy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = Tensor(shape: [3, 2], floats: [1, 2, 3, 4, 5, 6])
        try NPY.write(t, path: dir + "/t.npy")
        #expect(try NPY.read(path: dir + "/t.npy") == t)
    }
}

@Suite struct DatasetLoaderTests {
    /// Writes `n` uint8 images [n, 1, 2, 3] whose pixels encode their index,
    /// with label `i % 4`.
    func writeNPYSplit(_ dir: String, prefix: String, n: Int, rank3: Bool = false) throws {
        let pixels: [UInt8] = (0..<(n * 6)).map { (i: Int) -> UInt8 in UInt8((i / 6) * 10 + i % 6) }
        try NPY.write(try Tensor(shape: rank3 ? [n, 2, 3] : [n, 1, 2, 3], storage: .uint8(pixels)),
                      path: "\(dir)/\(prefix)_images.npy")
        try NPY.write(Tensor(shape: [n], int64s: (0..<n).map { Int64($0 % 4) }), path: "\(dir)/\(prefix)_labels.npy")
    }

    @Test func npyDirectorySplitsValidationFromTheEnd() throws {
        let dir = try makeTemporaryDirectory("npyset")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeNPYSplit(dir, prefix: "train", n: 10)
        try writeNPYSplit(dir, prefix: "test", n: 4, rank3: true)
        let data = try DatasetLoader.load(directory: dir, validationCount: 3)
        #expect(data.train.count == 7 && data.validation.count == 3 && data.test.count == 4)
        #expect(data.train.images.shape == [7, 1, 2, 3] && data.test.images.shape == [4, 1, 2, 3])
        // Validation is training images 7, 8, 9: pixel 0 of image i is 10·i / 255.
        #expect(data.validation.images.floats[0] == Float(70) / 255)
        #expect(data.validation.labels == [3, 0, 1])
        #expect(data.train.images.floats[6 * 6 + 5] == Float(65) / 255)
        #expect(data.classNames == ["0", "1", "2", "3"])

        let testOnly = try DatasetLoader.load(directory: dir, splits: [.test])
        #expect(testOnly.train.count == 0 && testOnly.validation.count == 0 && testOnly.test.count == 4)
        #expect(testOnly.train.sampleShape == [1, 2, 3])
    }

    @Test func idxDirectoryWithClassNamesFile() throws {
        let dir = try makeTemporaryDirectory("idxset")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (prefix, n) in [("train", 6), ("t10k", 2)] {
            try IDX.write(try Tensor(shape: [n, 4, 4], storage: .uint8([UInt8](repeating: 255, count: n * 16))),
                          path: "\(dir)/\(prefix)-images-idx3-ubyte.gz", gzip: true)
            try IDX.write(try Tensor(shape: [n], storage: .uint8((0..<n).map { UInt8($0 % 2) })),
                          path: "\(dir)/\(prefix)-labels-idx1-ubyte")
        }
        try "cat\ndog\n".write(toFile: dir + "/classes.txt", atomically: true, encoding: .utf8)
        let data = try DatasetLoader.load(directory: dir, validationCount: 2)
        #expect(data.train.count == 4 && data.validation.count == 2 && data.test.count == 2)
        #expect(data.test.images.floats.allSatisfy { $0 == 1 })
        #expect(data.classNames == ["cat", "dog"])
    }

    @Test func mismatchedCountsAndBadValidationCount() throws {
        let dir = try makeTemporaryDirectory("bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeNPYSplit(dir, prefix: "train", n: 5)
        try writeNPYSplit(dir, prefix: "test", n: 2)
        #expect { try DatasetLoader.load(directory: dir, validationCount: 6) } throws: { "\($0)".contains("exceeds") }
        try NPY.write(Tensor(shape: [3], int64s: [0, 1, 2]), path: dir + "/test_labels.npy")
        #expect { try DatasetLoader.load(directory: dir, validationCount: 1) } throws: {
            "\($0)".contains("has 2 images but") && "\($0)".contains("has 3 labels")
        }
    }

    @Test func missingDataNamesThePackage() throws {
        #expect {
            try DatasetLoader.load(directory: "/nonexistent/fashion-mnist")
        } throws: { "\($0)".contains("does not exist") && !"\($0)".contains("apt-get") }

        let emptyDir = try makeTemporaryDirectory("empty")
        defer { try? FileManager.default.removeItem(atPath: emptyDir) }
        #expect {
            try DatasetLoader.load(directory: emptyDir)
        } throws: { "\($0)".contains("train-images-idx3-ubyte") && "\($0)".contains("train_images.npy") }

        // The hint for the default directory, phrased without touching it.
        let error = DataError.datasetNotFound(directory: DatasetLoader.defaultDirectory, detail: "x")
        #expect("\(error)".contains(DatasetLoader.defaultDirectory))
        if !FileManager.default.fileExists(atPath: DatasetLoader.defaultDirectory) {
            #expect { try DatasetLoader.load() } throws: { "\($0)".contains("apt-get install dataset-fashion-mnist") }
        }
    }

    @Test func batchAndSubset() {
        let set = LabeledImages(images: Tensor(shape: [4, 1, 1, 2], floats: [0, 1, 2, 3, 4, 5, 6, 7]), labels: [0, 1, 2, 3])
        let b = set.batch(1..<3)
        #expect(b.images == Tensor(shape: [2, 1, 1, 2], floats: [2, 3, 4, 5]) && b.labels == [1, 2])
        let s = set.subset([3, 0])
        #expect(s.images == Tensor(shape: [2, 1, 1, 2], floats: [6, 7, 0, 1]) && s.labels == [3, 0])
    }

    static let fashionMNISTInstalled = FileManager.default.fileExists(
        atPath: DatasetLoader.defaultDirectory + "/t10k-labels-idx1-ubyte.gz")

    @Test(.enabled(if: fashionMNISTInstalled, "needs `apt-get install dataset-fashion-mnist`"))
    func loadsFashionMNIST() throws {
        let data = try DatasetLoader.load()
        #expect(data.train.count == 55_000 && data.validation.count == 5_000 && data.test.count == 10_000)
        #expect(data.train.images.shape == [55_000, 1, 28, 28] && data.sampleShape == [1, 28, 28])
        for split in DatasetSplit.allCases {
            #expect(data[split].labels.allSatisfy { (0..<10).contains($0) })
        }
        #expect(Set(data.test.labels).count == 10)
        #expect(data.classNames == DatasetLoader.fashionMNISTClassNames)
        let pixels = data.test.images.floats
        #expect(pixels.min()! >= 0 && pixels.max()! <= 1)
        // The published training-set mean pixel is 0.2860.
        let mean = data.train.images.floats.reduce(0.0) { $0 + Double($1) } / Double(55_000 * 784)
        #expect(abs(mean - 0.286) < 0.01)
    }

    @Test(.enabled(if: fashionMNISTInstalled, "needs `apt-get install dataset-fashion-mnist`"))
    func loadsOnlyTheTestSplit() throws {
        let data = try DatasetLoader.load(splits: [.test])
        #expect(data.test.count == 10_000 && data.train.count == 0 && data.train.sampleShape == [1, 28, 28])
    }
}
