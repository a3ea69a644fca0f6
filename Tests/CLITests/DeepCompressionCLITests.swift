import Foundation
import Testing
@testable import Compress
import Prune

/// The Deep Compression stages end to end through the CLI and the file, on
/// the tiny fixture of `RunCLITests`: what `share` ties survives the file,
/// later commands keep it, and each stage shrinks the file.
@Suite struct DeepCompressionCLITests {
    let cli = CLITests()
    let runs = RunCLITests()

    func size(_ path: String) throws -> Int { try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int }

    func distinctNonZeros(_ t: Tensor) -> Set<UInt32> { Set(t.floats.filter { $0 != 0 }.map(\.bitPattern)) }

    @Test func pruneShareHuffmanShrinkTheFileAndFineTuningKeepsTheTies() throws {
        let dir = try runs.fixture()
        let data = ["--data", "data", "--validation-count", "32"]
        for args in [["prune", "model.bin", "-o", "p.bin", "--sparsity", "0.9", "--scope", "global"],
                     ["share", "p.bin", "-o", "s.bin", "--fc-bits", "4"],
                     ["huffman", "s.bin", "-o", "h.bin"],
                     ["finetune", "h.bin", "-o", "f.bin", "--epochs", "1", "--batch", "16"] + data] {
            let r = try runs.run(args, in: dir)
            #expect(r.status == 0, "\(args): \(r.stderr)")
        }
        let sizes = try ["model.bin", "p.bin", "s.bin", "h.bin"].map { try size(dir + "/" + $0) }
        #expect(sizes[1] < sizes[0] && sizes[2] < sizes[1] && sizes[3] <= sizes[2], "\(sizes)")
        // 4-bit indices in place of 32-bit floats: the shared file is far smaller than the pruned one.
        #expect(sizes[2] * 2 < sizes[1], "\(sizes)")

        let (pruned, shared, coded, tuned) = try (ModelFile.read(path: dir + "/p.bin"), ModelFile.read(path: dir + "/s.bin"),
                                                   ModelFile.read(path: dir + "/h.bin"), ModelFile.read(path: dir + "/f.bin"))
        #expect(shared.metadata.storage.sharedTensors == ["fc1.weight", "fc2.weight", "fc3.weight"])
        #expect(coded.metadata.storage.huffman && coded.graph == shared.graph)
        #expect(tuned.metadata.storage == coded.metadata.storage)
        for name in shared.metadata.storage.sharedTensors {
            let (p, s, t) = (pruned.graph.initializers[name]!, shared.graph.initializers[name]!, tuned.graph.initializers[name]!)
            #expect(distinctNonZeros(s).count <= 15, "\(name)")
            // Fine-tuning from the file moved the centroids but kept the ties and the zeros.
            #expect(distinctNonZeros(t).count <= distinctNonZeros(s).count, "\(name)")
            #expect(zip(p.floats, t.floats).allSatisfy { ($0 == 0) == ($1 == 0) } && p.count == t.count, "\(name)")
        }
        #expect(tuned.graph.initializers != coded.graph.initializers)

        let info = try cli.run(["info", dir + "/h.bin"]).stdout
        #expect(info.contains("codebook/4-bit"), "\(info)")
        #expect(info.contains("weight sharing (codebooks, Huffman coding allowed):"), "\(info)")
        // What `info` says the Huffman-coded file would take without Huffman is what the plain file takes.
        let codedInfo = try #require(try cli.json(try cli.run(["info", dir + "/h.bin", "--json"]).stdout)["sharedTensors"] as? [[String: Any]])
        let plain = try #require(try cli.json(try cli.run(["info", dir + "/s.bin", "--json"]).stdout)["sharedTensors"] as? [[String: Any]])
        #expect(codedInfo.count == 3 && plain.count == 3)
        for (c, p) in zip(codedInfo, plain) {
            let without = try #require(c["withoutHuffman"] as? [String: Any])
            #expect(without["bytes"] as? Int == p["bytes"] as? Int && without["encoding"] as? String == p["encoding"] as? String)
            #expect((c["bytes"] as! Int) <= (p["bytes"] as! Int))
            #expect(p["withoutHuffman"] == nil)
        }
        let onnx = try runs.run(["convert", "h.bin", "-o", "h.onnx"], in: dir)
        #expect(onnx.status == 0)
        #expect(onnx.stdout.contains("note: 3 weight-shared tensor(s) (fc1.weight, fc2.weight, fc3.weight) written as plain float32"))
    }
}
