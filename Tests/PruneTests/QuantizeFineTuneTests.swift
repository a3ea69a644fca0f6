import Testing
@testable import Compress
@testable import Prune

/// `quantize --finetune-epochs N`: quantization-aware fine-tuning after
/// quantizing and calibrating, every recorded tensor kept on its grid.
@Suite struct QuantizeFineTuneTests {
    /// An untrained LeNet-300 on 8x8 quadrant images: fine-tuning has
    /// something to gain, so the pass keeps the trained model.
    let model = Architecture.lenet300.build(seed: 2, inputShape: [1, 8, 8], classes: 4)

    func run(_ raw: [String: String]) throws -> (Model, PassRecord) {
        let (pass, parameters) = try quantizePass(raw)
        return try pass.run(on: model, context: pruneContext(), parameters: parameters)
    }

    @Test func int8FineTuningKeepsWeightsAndBiasesOnTheirGrids() throws {
        let (ptq, ptqRecord) = try run(["format": "int8"])
        let (out, record) = try run(["format": "int8", "finetune-epochs": "1"])
        let before = try #require(record.metrics["validation-accuracy-before-finetune"])
        #expect(before == ptqRecord.metrics["validation-accuracy"])
        #expect(try #require(record.metrics["validation-accuracy"]) > before, "\(record.changes)")
        #expect(record.changes.contains { $0.hasPrefix("quantization-aware fine-tuning, 1 epoch(s)") })
        #expect(out.metadata.history.map(\.pass).suffix(2) == ["finetune", "quantize"])
        // Same grids and quantizers as post-training quantization, other integers.
        #expect(out.metadata.storage.precisions == ptq.metadata.storage.precisions)
        #expect(Set(out.metadata.storage.precisions.keys) == ["fc1.weight", "fc2.weight", "fc3.weight"])
        #expect(out.graph.nodes.map(\.op) == ptq.graph.nodes.map(\.op))
        for (name, precision) in out.metadata.storage.precisions {
            let w = out.graph.initializers[name]!
            #expect(precision.problem(values: w.floats, shape: w.shape) == nil, "\(name) off its grid")
            guard case .int8(let grid) = precision else { Issue.record("\(name) is not int8"); continue }
            #expect(grid.quantize(w.floats, shape: w.shape).allSatisfy { (grid.qmin...grid.qmax).contains($0) })
            #expect(w != ptq.graph.initializers[name]!, "\(name) did not train")
        }
        // Every bias of an int8 layer on its int32 grid (input scale x weight scale).
        var biases = 0
        for node in out.graph.nodes {
            guard let grid = out.graph.biasGrid(of: node, precisions: out.metadata.storage.precisions) else { continue }
            let b = out.graph.initializers[node.inputs[2]]!
            #expect(grid.fakeQuantize(b.floats, shape: b.shape) == b.floats, "\(node.inputs[2])")
            biases += 1
        }
        #expect(biases == 3)
        // The writer accepts it, and the file reads back the same model.
        #expect(try ModelFile.decode(try ModelFile.encode(out)) == out)
        // The recorded validation accuracy is the written model's.
        let measured = try Evaluation.accuracy(of: out, on: quadrantSplits().validation).top1
        #expect(measured == record.metrics["validation-accuracy"])
    }

    @Test func float16FineTuningKeepsFloat16Weights() throws {
        let (out, record) = try run(["format": "float16", "finetune-epochs": "1"])
        #expect(out.metadata.storage.precisions.count == 6)
        for (name, precision) in out.metadata.storage.precisions {
            #expect(precision == .float16)
            let w = out.graph.initializers[name]!
            #expect(w.floats.allSatisfy { $0.roundedToFloat16 == $0 }, "\(name)")
        }
        #expect(try #require(record.metrics["validation-accuracy"]) > record.metrics["validation-accuracy-before-finetune"]!)
        #expect(try ModelFile.decode(try ModelFile.encode(out)) == out)
    }

    @Test func noGainKeepsTheQuantizedModel() throws {
        // A trained model, fine-tuned at a learning rate too small to change its
        // validation accuracy: the quantized model (epoch 0) stays the choice.
        let trained = try pruneContext().trainer!.fineTune(model, data: quadrantSplits(), epochs: 3, context: pruneContext())
        let (ptqPass, ptqParameters) = try quantizePass(["format": "int8"])
        let (ptq, _) = try ptqPass.run(on: trained, context: pruneContext(), parameters: ptqParameters)
        let (pass, parameters) = try quantizePass(["format": "int8", "finetune-epochs": "1", "finetune-lr": "0.000001"])
        let (out, record) = try pass.run(on: trained, context: pruneContext(), parameters: parameters)
        #expect(out.graph.initializers == ptq.graph.initializers)
        #expect(out.metadata.history.map(\.pass) == trained.metadata.history.map(\.pass) + ["quantize"])
        #expect(record.changes.contains { $0.contains("the quantized model is kept") }, "\(record.changes)")
        #expect(record.metrics["validation-accuracy"] == record.metrics["validation-accuracy-before-finetune"])
    }

    @Test func badFineTuneParametersAreOneClearMessage() throws {
        #expect(throws: ParameterError(pass: "quantize", problems: ["finetune-epochs must be >= 0, got -1"])) {
            try quantizePass(["format": "int8", "finetune-epochs": "-1"])
        }
        #expect(throws: ParameterError(pass: "quantize", problems: [
            "finetune-keep-precisions false would undo the quantization; fine-tune with `finetune --keep-precisions false` instead",
        ])) {
            try quantizePass(["format": "int8", "finetune-epochs": "1", "finetune-keep-precisions": "false"])
        }
        #expect(throws: ParameterError.self) { try quantizePass(["format": "int8", "finetune-lr": "0"]) }
        let spec = try #require(QuantizePass.parameters.first { $0.name == "finetune-epochs" })
        #expect(spec.help.hasPrefix("Quantization-aware fine-tuning epochs"))
        // Without a trainer, one message and no model.
        let (pass, parameters) = try quantizePass(["format": "float16", "finetune-epochs": "1"])
        let splits = quadrantSplits()
        #expect(throws: ParameterError(pass: "quantize", problems: ["fine-tuning needs a trainer, which this run does not provide"])) {
            try pass.run(on: model, context: PassContext(data: DataProvider { splits }), parameters: parameters)
        }
    }
}
