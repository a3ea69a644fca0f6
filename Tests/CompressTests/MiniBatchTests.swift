import Testing
@testable import Compress

@Suite struct MiniBatchTests {
    func numbered(_ n: Int, side: Int = 2) -> LabeledImages {
        let per = side * side
        return LabeledImages(images: Tensor(shape: [n, 1, side, side], floats: (0..<(n * per)).map { Float($0 / per) }),
                             labels: (0..<n).map { Int32($0 % 10) })
    }

    @Test func epochVisitsEveryImageOnce() {
        let data = numbered(23)
        let batches = MiniBatches(data, batchSize: 5, seed: 1, epoch: 0)
        #expect(batches.count == 5)
        // Each image's pixels equal its index, so the first pixel identifies it.
        let seen = batches.flatMap { b in (0..<b.count).map { Int(b.images.floats[$0 * 4]) } }
        #expect(seen.sorted() == Array(0..<23))
        #expect(seen != Array(0..<23))
    }

    @Test func orderDependsOnlyOnSeedAndEpoch() {
        let data = numbered(50)
        #expect(MiniBatches(data, batchSize: 8, seed: 3, epoch: 2).order == MiniBatches(data, batchSize: 8, seed: 3, epoch: 2).order)
        #expect(MiniBatches(data, batchSize: 8, seed: 3, epoch: 2).order != MiniBatches(data, batchSize: 8, seed: 3, epoch: 3).order)
        #expect(MiniBatches(data, batchSize: 8, seed: 3, epoch: 0, shuffle: false).order == Array(0..<50))
        #expect(MiniBatches(data, batchSize: 8, seed: 3, epoch: 0, dropLast: true).order.count == 48)
    }

    @Test func cropShiftsWithZeroFillAndFlipMirrors() {
        // 1x1x3x3 image with values 1...9.
        let image = Tensor(shape: [1, 1, 3, 3], floats: (1...9).map(Float.init))
        var sawShift = false, sawFlip = false
        for seed in 0..<40 {
            var rng = SeededGenerator(seed: UInt64(seed))
            let out = augmented(image, with: Augmentation(cropPadding: 1, horizontalFlip: true), rng: &rng).floats
            // Every output pixel is either 0 (padding) or a pixel of the source.
            #expect(out.allSatisfy { $0 == 0 || (1...9).contains($0) })
            // Each row keeps the source's horizontal order or reverses it: check the middle row.
            let row = Array(out[3..<6]).filter { $0 != 0 }
            #expect(row == row.sorted() || row == row.sorted().reversed())
            if out.contains(0) { sawShift = true }
            if row.count > 1 && row.first! > row.last! { sawFlip = true }
        }
        #expect(sawShift && sawFlip)
        var rng = SeededGenerator(seed: 1)
        #expect(augmented(image, with: Augmentation(), rng: &rng) == image)
    }
}
