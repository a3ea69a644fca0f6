import Foundation

extension DatasetLoader {
    /// The files `load` reads from `directory` (nil: `defaultDirectory`) when
    /// asked for every split, in reading order: the training images and
    /// labels, the test images and labels, then `classes.txt` when there is
    /// one. A resumable pipeline run fingerprints their bytes, so `--resume`
    /// notices data that changed under the same path.
    ///
    /// - Throws: `DataError.datasetNotFound` as `load` does, when the
    ///   directory or a split's files are missing.
    public static func files(directory: String? = nil) throws(DataError) -> [String] {
        let dir = directory ?? defaultDirectory
        let hint = installHint(directory: directory)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .datasetNotFound(directory: dir, detail: "the directory does not exist" + hint)
        }
        let train = try locate(.train, in: dir, hint: hint), test = try locate(.test, in: dir, hint: hint)
        let classList = (dir as NSString).appendingPathComponent("classes.txt")
        return [train.images, train.labels, test.images, test.labels]
            + (FileManager.default.fileExists(atPath: classList) ? [classList] : [])
    }

    /// What an error about the dataset in `directory` adds when it is the
    /// default one: how to install it. Empty for any other directory.
    static func installHint(directory: String?) -> String {
        directory == nil || standardized(directory!) == defaultDirectory
            ? "; install Fashion-MNIST with `apt-get install \(defaultPackage)`" : ""
    }
}
