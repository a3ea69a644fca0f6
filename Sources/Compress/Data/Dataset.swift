import Foundation

/// Images with one class label each: what training and evaluation consume.
public struct LabeledImages: Sendable, Equatable {
    /// Pixels as float32 `[N, C, H, W]`, scaled to [0, 1]. The model's own
    /// normalization is applied later, by whoever runs it.
    public var images: Tensor
    /// One class index per image, in `0..<classCount`.
    public var labels: [Int32]

    /// Pairs images with labels. Traps when the counts differ or the images
    /// are not a float32 `[N, C, H, W]` tensor.
    public init(images: Tensor, labels: [Int32]) {
        precondition(images.rank == 4 && images.dtype == .float32,
                     "images must be float32 [N, C, H, W], got \(images.dtype) \(images.shape)")
        precondition(images.shape[0] == labels.count,
                     "\(images.shape[0]) images but \(labels.count) labels")
        self.images = images
        self.labels = labels
    }

    /// No images, each of `sampleShape` (`[C, H, W]`).
    public static func empty(sampleShape: [Int]) -> LabeledImages {
        LabeledImages(images: .zeros([0] + sampleShape), labels: [])
    }

    /// Number of images.
    public var count: Int { labels.count }

    /// Shape of one image, `[C, H, W]`.
    public var sampleShape: [Int] { Array(images.shape.dropFirst()) }

    /// Images `range` with their labels, copied into a new contiguous tensor.
    public func batch(_ range: Range<Int>) -> LabeledImages {
        precondition(range.lowerBound >= 0 && range.upperBound <= count,
                     "batch \(range) is outside 0..<\(count)")
        let stride = sampleShape.elementCount
        let pixels = images.floats
        let slice = Array(pixels[(range.lowerBound * stride)..<(range.upperBound * stride)])
        return LabeledImages(images: Tensor(shape: [range.count] + sampleShape, floats: slice),
                             labels: Array(labels[range]))
    }

    /// The images at `indices`, in that order (e.g. a shuffled mini-batch).
    public func subset(_ indices: [Int]) -> LabeledImages {
        let stride = sampleShape.elementCount
        let pixels = images.floats
        let gathered = [Float](unsafeUninitializedCapacity: indices.count * stride) { out, initialized in
            pixels.withUnsafeBufferPointer { src in
                for (k, i) in indices.enumerated() {
                    precondition(i >= 0 && i < count, "index \(i) is outside 0..<\(count)")
                    let from = UnsafeBufferPointer(rebasing: src[(i &* stride)..<(i &* stride &+ stride)])
                    _ = UnsafeMutableBufferPointer(rebasing: out[(k &* stride)..<(k &* stride &+ stride)])
                        .initialize(from: from)
                }
            }
            initialized = indices.count * stride
        }
        return LabeledImages(images: Tensor(shape: [indices.count] + sampleShape, floats: gathered),
                             labels: indices.map { labels[$0] })
    }
}

/// The three parts of a dataset a compression run uses.
public enum DatasetSplit: String, CaseIterable, Sendable, Hashable {
    /// Images to fit weights on.
    case train
    /// Held-out training images to steer compression and fine-tuning.
    case validation
    /// The test set, for reporting only.
    case test
}

/// A dataset cut into training, validation and test images, with class names.
/// Splits not requested from `DatasetLoader.load` are empty.
public struct DatasetSplits: Sendable, Equatable {
    public var train: LabeledImages
    public var validation: LabeledImages
    public var test: LabeledImages
    /// Name of each class, indexed by label.
    public var classNames: [String]

    public init(train: LabeledImages, validation: LabeledImages, test: LabeledImages, classNames: [String]) {
        self.train = train; self.validation = validation; self.test = test; self.classNames = classNames
    }

    /// Shape of one image, `[C, H, W]` (empty splits carry it too).
    public var sampleShape: [Int] { test.sampleShape }

    /// Nil when images of `dataShape` fit a model input of `inputShape` (both
    /// one sample, `[C, H, W]`), else the message every command that feeds
    /// data to a model refuses with, e.g. "the data's images are 1x28x28 but
    /// the model takes 3x224x224" (a 224x224 `resnet18` on Fashion-MNIST).
    public static func inputShapeProblem(data dataShape: [Int], model inputShape: [Int]) -> String? {
        guard dataShape != inputShape else { return nil }
        func text(_ shape: [Int]) -> String { shape.map(String.init).joined(separator: "x") }
        return "the data's images are \(text(dataShape)) but the model takes \(text(inputShape))"
    }

    /// The first `limit` images of every split (all of a smaller split).
    public func prefix(_ limit: Int) -> DatasetSplits {
        func cut(_ images: LabeledImages) -> LabeledImages { images.batch(0..<min(limit, images.count)) }
        return DatasetSplits(train: cut(train), validation: cut(validation), test: cut(test), classNames: classNames)
    }

    /// The split named `split`.
    public subscript(split: DatasetSplit) -> LabeledImages {
        switch split {
        case .train: train
        case .validation: validation
        case .test: test
        }
    }
}

/// Loads image classification datasets from a directory of IDX or `.npy` files.
///
/// Recognized layouts, tried in this order:
/// - IDX, as Fashion-MNIST and MNIST ship (Xiao et al., "Fashion-MNIST", 2017;
///   LeCun et al. 1998): `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
///   `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each optionally `.gz`.
/// - NumPy: `train_images.npy`, `train_labels.npy`, `test_images.npy`,
///   `test_labels.npy`. Images are `[N, C, H, W]` or `[N, H, W]` (one channel),
///   float32/float64 in [0, 1] or uint8 in 0...255; labels are integers.
///
/// uint8 pixels are scaled by 1/255. The validation split is the *last*
/// `validationCount` training images; the training split is the rest.
///
/// Class names come from a `classes.txt` file (one name per line) when the
/// directory has one, else Fashion-MNIST's names when the directory name
/// contains "fashion", else "0" to "K-1".
public enum DatasetLoader {
    /// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"

    /// The Debian package that provides `defaultDirectory`.
    public static let defaultPackage = "dataset-fashion-mnist"

    /// Fashion-MNIST's ten classes, by label.
    public static let fashionMNISTClassNames = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    /// Loads `splits` of the dataset in `directory` (default: `defaultDirectory`).
    /// Asking only for `.test` reads only the test files.
    ///
    /// - Parameters:
    ///   - directory: a directory of IDX or `.npy` files; nil for Fashion-MNIST.
    ///   - validationCount: training images held out, from the end, as validation.
    ///   - splits: the splits to load; the others are returned empty.
    public static func load(directory: String? = nil, validationCount: Int = 5000,
                            splits: Set<DatasetSplit> = Set(DatasetSplit.allCases)) throws(DataError) -> DatasetSplits {
        let dir = directory ?? defaultDirectory
        let hint = installHint(directory: directory)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .datasetNotFound(directory: dir, detail: "the directory does not exist" + hint)
        }
        guard validationCount >= 0 else {
            throw .inconsistent(detail: "validation count must be non-negative, got \(validationCount)")
        }

        var train: LabeledImages?, validation: LabeledImages?, test: LabeledImages?
        var sampleShape: [Int]?
        var labelCeiling: Int32 = 0

        if !splits.isDisjoint(with: [.train, .validation]) {
            let files = try locate(.train, in: dir, hint: hint)
            let (images, labels) = try readPair(files)
            guard validationCount <= labels.count else {
                throw .inconsistent(detail: "validation count \(validationCount) exceeds the \(labels.count) "
                                    + "training images in \(files.images)")
            }
            let cut = labels.count - validationCount
            sampleShape = Array(images.shape.dropFirst())
            if splits.contains(.train) {
                train = try scaledImages(images, samples: 0..<cut, source: files.images, labels: Array(labels[..<cut]))
            }
            if splits.contains(.validation) {
                validation = try scaledImages(images, samples: cut..<labels.count, source: files.images,
                                              labels: Array(labels[cut...]))
            }
            labelCeiling = max(labelCeiling, (labels.max() ?? -1) + 1)
        }
        if splits.contains(.test) {
            let files = try locate(.test, in: dir, hint: hint)
            let (images, labels) = try readPair(files)
            let shape = Array(images.shape.dropFirst())
            if let s = sampleShape, s != shape {
                throw .inconsistent(detail: "training images are \(s) but test images in \(files.images) are \(shape)")
            }
            sampleShape = shape
            test = try scaledImages(images, samples: 0..<labels.count, source: files.images, labels: labels)
            labelCeiling = max(labelCeiling, (labels.max() ?? -1) + 1)
        }
        let shape = sampleShape ?? [0, 0, 0]
        return DatasetSplits(train: train ?? .empty(sampleShape: shape),
                             validation: validation ?? .empty(sampleShape: shape),
                             test: test ?? .empty(sampleShape: shape),
                             classNames: try classNames(directory: dir, classCount: Int(labelCeiling)))
    }

    // MARK: - Files

    struct SplitFiles {
        var images: String
        var labels: String
    }

    static func standardized(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// The image and label files of `split` (`.train` or `.test`) in `dir`.
    static func locate(_ split: DatasetSplit, in dir: String, hint: String) throws(DataError) -> SplitFiles {
        let idxPrefix = split == .test ? "t10k" : "train"
        let npyPrefix = split == .test ? "test" : "train"
        let fm = FileManager.default
        func first(_ names: [String]) -> String? {
            names.map { (dir as NSString).appendingPathComponent($0) }.first { fm.fileExists(atPath: $0) }
        }
        let idxImages = first(["\(idxPrefix)-images-idx3-ubyte", "\(idxPrefix)-images-idx3-ubyte.gz",
                               "\(idxPrefix)-images.idx3-ubyte"])
        let idxLabels = first(["\(idxPrefix)-labels-idx1-ubyte", "\(idxPrefix)-labels-idx1-ubyte.gz",
                               "\(idxPrefix)-labels.idx1-ubyte"])
        if let idxImages, let idxLabels { return SplitFiles(images: idxImages, labels: idxLabels) }
        let npyImages = first(["\(npyPrefix)_images.npy"])
        let npyLabels = first(["\(npyPrefix)_labels.npy"])
        if let npyImages, let npyLabels { return SplitFiles(images: npyImages, labels: npyLabels) }
        let found = [idxImages, idxLabels, npyImages, npyLabels].compactMap { $0 }
        let foundText = found.isEmpty ? "" : " (found only \(found.map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")))"
        throw .datasetNotFound(directory: dir, detail: "no \(split == .test ? "test" : "training") data: expected "
                               + "\(idxPrefix)-images-idx3-ubyte[.gz] and \(idxPrefix)-labels-idx1-ubyte[.gz], or "
                               + "\(npyPrefix)_images.npy and \(npyPrefix)_labels.npy\(foundText)" + hint)
    }

    static func readTensor(_ path: String) throws(DataError) -> Tensor {
        path.hasSuffix(".npy") ? try NPY.read(path: path) : try IDX.read(path: path)
    }

    /// Reads and checks an image file and its label file; images come back
    /// as `[N, C, H, W]` in their stored dtype.
    static func readPair(_ files: SplitFiles) throws(DataError) -> (images: Tensor, labels: [Int32]) {
        var images = try readTensor(files.images)
        if images.rank == 3 { images = try! images.reshaped([images.shape[0], 1, images.shape[1], images.shape[2]]) }
        guard images.rank == 4 else {
            throw .unsupported(path: files.images, detail: "images must be [N, H, W] or [N, C, H, W], got \(images.shape)")
        }
        guard images.shape.dropFirst().allSatisfy({ $0 > 0 }) else {
            throw .unsupported(path: files.images, detail: "images have an empty dimension: \(images.shape)")
        }
        let labelTensor = try readTensor(files.labels)
        guard labelTensor.rank == 1 else {
            throw .unsupported(path: files.labels, detail: "labels must be one-dimensional [N], got \(labelTensor.shape)")
        }
        let labels: [Int32]
        switch labelTensor.storage {
        case .uint8(let v): labels = v.map { Int32($0) }
        case .int8(let v): labels = v.map { Int32($0) }
        case .int64(let v):
            guard let bad = v.first(where: { $0 < Int64(Int32.min) || $0 > Int64(Int32.max) }) else {
                labels = v.map { Int32($0) }
                break
            }
            throw .unsupported(path: files.labels, detail: "label \(bad) is out of range")
        default:
            throw .unsupported(path: files.labels, detail: "labels must be integers, got \(labelTensor.dtype)")
        }
        if let bad = labels.first(where: { $0 < 0 }) {
            throw .unsupported(path: files.labels, detail: "labels must be non-negative, found \(bad)")
        }
        guard labels.count == images.shape[0] else {
            throw .inconsistent(detail: "\(files.images) has \(images.shape[0]) images but \(files.labels) "
                                + "has \(labels.count) labels")
        }
        return (images, labels)
    }

    /// Samples `samples` of `images` as float32 in [0, 1]: uint8 scaled by 1/255
    /// (the float pixels beside the bytes checked against `budget` first),
    /// floats checked to lie in [0, 1].
    static func scaledImages(_ images: Tensor, samples: Range<Int>, source: String, labels: [Int32],
                             budget: MemoryBudget = .processDefault) throws(DataError) -> LabeledImages {
        let sampleShape = Array(images.shape.dropFirst())
        let stride = sampleShape.elementCount
        let lo = samples.lowerBound * stride, n = samples.count * stride
        let pixels: [Float]
        switch images.storage {
        case .uint8(let v):
            let shape = [samples.count] + sampleShape
            let floats = MemoryNeed.TensorSize(name: source, shape: shape)
            do {
                try budget.check(MemoryNeed(purpose: "reading \(source) as float32 pixels", tensors: [floats], extraBytes: v.count))
            } catch {
                throw .exceedsMemoryBudget(error)
            }
            pixels = [Float](unsafeUninitializedCapacity: n) { out, initialized in
                v.withUnsafeBufferPointer { src in
                    for i in 0..<n { out[i] = Float(pixel: src[lo &+ i]) }
                }
                initialized = n
            }
        case .float32(let v):
            let slice = v[lo..<(lo + n)]
            // A little slack for values rounded on their way through float64.
            if let bad = slice.first(where: { !($0 >= -1e-3 && $0 <= 1.001) }) {
                throw .unsupported(path: source, detail: "float pixels must lie in [0, 1], found \(bad); "
                                   + "store raw pixels, not normalized ones")
            }
            pixels = Array(slice)
        default:
            throw .unsupported(path: source, detail: "images must be uint8 or float, got \(images.dtype)")
        }
        return LabeledImages(images: Tensor(shape: [samples.count] + sampleShape, floats: pixels), labels: labels)
    }

    /// Class names for labels `0..<classCount`.
    static func classNames(directory: String, classCount: Int) throws(DataError) -> [String] {
        let listPath = (directory as NSString).appendingPathComponent("classes.txt")
        if FileManager.default.fileExists(atPath: listPath) {
            let bytes = try readFileBytes(path: listPath)
            let names = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            let trimmed = Array(names.reversed().drop(while: \.isEmpty).reversed())
            guard trimmed.count >= classCount else {
                throw .inconsistent(detail: "\(listPath) names \(trimmed.count) classes but the labels go up to \(classCount - 1)")
            }
            return trimmed
        }
        let name = (standardized(directory) as NSString).lastPathComponent.lowercased()
        if name.contains("fashion") && classCount <= fashionMNISTClassNames.count {
            return fashionMNISTClassNames
        }
        return (0..<classCount).map(String.init)
    }
}

extension Float {
    /// A uint8 pixel as a float in [0, 1]: `byte * (1 / 255)`, the one
    /// scaling every command applies (data sets, `predict`), so a quantizer
    /// reading the input sees the same bits whichever command fed it.
    @inlinable public init(pixel byte: UInt8) {
        self = Float(byte) * (1 / 255 as Float)
    }
}
