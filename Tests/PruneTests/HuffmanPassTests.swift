import Testing
@testable import Compress
@testable import Prune

@Suite struct HuffmanPassTests {
    @Test func recordsTheStorageOptionAndKeepsTheValues() throws {
        let model = Architecture.lenet300.build(seed: 1, inputShape: [1, 8, 8], classes: 4)
        let on = try PassParameters(validating: [:], against: HuffmanPass.parameters, pass: HuffmanPass.name)
        let (allowed, record) = try HuffmanPass(parameters: on).run(on: model, context: PassContext(), parameters: on)
        #expect(allowed.metadata.storage.huffman)
        #expect(allowed.graph == model.graph)
        #expect(record.metrics["file-bytes-before"] == Double(try ModelFile.encode(model).count))
        let off = try PassParameters(validating: ["enabled": "false"], against: HuffmanPass.parameters, pass: HuffmanPass.name)
        let (plain, _) = try HuffmanPass(parameters: off).run(on: allowed, context: PassContext(), parameters: off)
        #expect(!plain.metadata.storage.huffman)
        #expect(plain.graph == model.graph)
    }
}
