import Testing
@testable import Compress

@Suite struct MemoryBudgetTests {
    @Test func parsesSizes() throws {
        #expect(try MemoryBudget(parsing: "1000000").bytes == 1_000_000)
        #expect(try MemoryBudget(parsing: "512MB").bytes == 512_000_000)
        #expect(try MemoryBudget(parsing: "1.5GB").bytes == 1_500_000_000)
        #expect(try MemoryBudget(parsing: "2GiB").bytes == 2 << 30)
        #expect(try MemoryBudget(parsing: "2G").bytes == 2 << 30)
        #expect(try MemoryBudget(parsing: "64 KiB").bytes == 65536)
        #expect(try MemoryBudget(parsing: "3kb").bytes == 3000)
        let half = try MemoryBudget(parsing: "50%")
        #expect(half.bytes == MemoryBudget.availableMemory / 2)
        #expect(half.origin.hasPrefix("50% of this machine's"))
        for bad in ["", "abc", "-1GB", "0", "12XB", "150%", "0%", "1e30GB", "GB"] {
            #expect(throws: MemoryBudgetParseError.self) { try MemoryBudget(parsing: bad) }
        }
    }

    @Test func formatsBinaryUnits() {
        #expect(MemoryBudget.format(bytes: 512) == "512 B")
        #expect(MemoryBudget.format(bytes: 1536) == "1.5 KiB")
        #expect(MemoryBudget.format(bytes: 43_200_000_000) == "40.2 GiB")
    }

    @Test func refusesNamingTheLargestTensor() throws {
        let input = MemoryNeed.TensorSize(name: "input", shape: [1, 3, 60000, 60000],
                                          bytes: MemoryNeed.bytes(elements: [1, 3, 60000, 60000], elementSize: 4))
        #expect(input.bytes == 43_200_000_000)
        let need = MemoryNeed(purpose: "running batch 1 of huge.onnx",
                              tensors: [MemoryNeed.TensorSize(name: "w", shape: [4, 3, 3, 3], bytes: 432), input])
        #expect(need.bytes == 43_200_000_432)
        let budget = MemoryBudget(bytes: 1 << 30, origin: "--max-memory 1GiB")
        let error = #expect(throws: MemoryBudgetExceeded.self) { try budget.check(need) }
        #expect(error?.description == "running batch 1 of huge.onnx needs 40.2 GiB of memory (largest tensor: 'input' 1x3x60000x60000, 40.2 GiB), "
                + "more than the memory budget of 1.0 GiB (--max-memory 1GiB); raise it with --max-memory if the machine has the memory")
        try MemoryBudget(bytes: 43_200_000_432).check(need)
    }

    @Test func saturatesDeclaredSizes() {
        #expect(MemoryNeed.bytes(elements: [1 << 40, 1 << 40], elementSize: 4) == Int.max)
        #expect(MemoryNeed.bytes(elements: [-1, 3], elementSize: 4) == Int.max)
        let need = MemoryNeed(purpose: "x", tensors: [.init(name: "a", shape: [], bytes: Int.max), .init(name: "b", shape: [], bytes: 8)])
        #expect(need.bytes == Int.max)
    }

    @Test func machineDefaultIsAShareOfMemory() {
        let budget = MemoryBudget.machineDefault
        #expect(MemoryBudget.availableMemory > 0)
        #expect(budget.bytes == Int(Double(MemoryBudget.availableMemory) * MemoryBudget.defaultFraction))
    }
}
