import Foundation
import Testing
@testable import Compress

/// Smoke runs of every shipped pipeline (`pipelines/*.yaml`) on the real
/// dataset, as CI runs them: every step, one epoch, the first images of each
/// split (`compressor run --max-epochs 1 --limit N`). The full runs, with
/// their times and numbers, are in docs/.
@Suite(.serialized) struct PipelineSmokeTests {
    let cli = CLITests()
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static var shippedPipelines: [String] {
        let directory = root.appendingPathComponent("pipelines").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted()
    }

    static var hasDataset: Bool { FileManager.default.fileExists(atPath: DatasetLoader.defaultDirectory) }

    @Test(.enabled(if: hasDataset, "needs Fashion-MNIST (apt-get install dataset-fashion-mnist)"),
          arguments: shippedPipelines)
    func shippedPipelineRunsEndToEnd(_ file: String) throws {
        let pipelinePath = Self.root.appendingPathComponent("pipelines/" + file).path
        let pipeline = try Pipeline.read(path: pipelinePath)
        let dir = try cli.tempDir().path
        let shippedOutput = try #require(pipeline.output)
        let before = try? FileManager.default.attributesOfItem(atPath: shippedOutput)[.modificationDate] as? Date
        let r = try cli.run(["run", pipelinePath, "--max-epochs", "1", "--limit", "256",
                             "-o", dir + "/out.bin", "--report", dir + "/report", "--json"])
        #expect(r.status == 0, "\(file): \(r.stderr)")
        guard r.status == 0 else { return }
        let summary = try cli.json(r.stdout)
        let steps = try #require(summary["steps"] as? [[String: Any]])
        #expect(steps.count == pipeline.steps.count)
        // Every step ran, none more than one epoch.
        for step in steps {
            let parameters = step["parameters"] as? [String: String] ?? [:]
            for key in PipelineOverrides.epochParameters {
                if let epochs = parameters[key].flatMap(Int.init) { #expect(epochs <= 1, "\(file) step \(step["name"]!)") }
            }
        }
        // The evaluations used the limited test split.
        for step in steps {
            if let accuracy = step["accuracy"] as? [String: Any] { #expect(accuracy["images"] as? Int == 256) }
        }
        #expect(try statSize(dir + "/out.bin") > 0)
        // The report has the input and every step that changed the model.
        let report = try cli.json(String(contentsOfFile: dir + "/report/report.json", encoding: .utf8))
        let models = try #require(report["models"] as? [[String: Any]])
        #expect(models.count == 1 + steps.filter { $0["file"] != nil }.count)
        // The pipeline's own output (out/ in the checkout) is left as it was.
        let after = try? FileManager.default.attributesOfItem(atPath: shippedOutput)[.modificationDate] as? Date
        #expect(before == after)
    }
}
