/// What each number in a report means. The same text goes into the JSON
/// (`definitions`), the Markdown and the HTML, so a report explains itself.
public enum ReportDefinitions {
    /// One definition: the JSON field it explains, a short title, and the text.
    public struct Entry: Sendable, Equatable {
        public var field: String
        public var title: String
        public var text: String
    }

    /// Every definition, in the order the documents list them.
    public static let all: [Entry] = [
        Entry(field: "fileBytes", title: "Model bytes",
              text: "Size of the model file on disk, in bytes (as `compressor info` prints it)."),
        Entry(field: "compressionRatio", title: "Compression ratio",
              text: "Baseline file bytes / this model's file bytes. The baseline is the first model listed; "
                  + "above 1 means smaller than the baseline."),
        Entry(field: "parameters", title: "Parameters",
              text: "Elements of all initializers (weights, biases, batch-norm statistics), counted dense."),
        Entry(field: "nonZeroParameters", title: "Non-zeros",
              text: "Parameters whose value is not exactly zero."),
        Entry(field: "weights", title: "Weights",
              text: "Elements of the Conv and Linear weight tensors (kernels and matrices; biases, batch-norm "
                  + "and other tensors excluded), counted as if stored dense."),
        Entry(field: "weightStorageBytes", title: "Weight storage",
              text: "File bytes that store the Conv and Linear weight tensors: values plus any indices, "
                  + "codebooks and tables, and each tensor's record (name, shape, framing), in the encoding the "
                  + "file uses for it (dense, sparse, codebook, Huffman-coded)."),
        Entry(field: "bitsPerWeight", title: "Bits per weight",
              text: "8 × weight storage bytes / weights; per layer, the same for its weight tensor alone. "
                  + "Dense float32 weights take 32 bits plus record overhead."),
        Entry(field: "bitsPerNonZero", title: "Bits per non-zero",
              text: "Per layer: 8 × weight bytes / non-zero elements of the weight tensor: what each stored "
                  + "weight costs, its share of indices, codebook and tables included."),
        Entry(field: "weightBytes", title: "Weight bytes",
              text: "Per layer: file bytes of the weight tensor alone (the Conv/Linear weight, else the first "
                  + "initializer), record included; the same numbers as `compressor info`."),
        Entry(field: "withoutHuffman", title: "Without Huffman",
              text: "Per layer, for a file that allows Huffman coding: the encoding, bytes and bits the weight "
                  + "would take with it turned off; '-' (null) otherwise."),
        Entry(field: "computes", title: "Computes in",
              text: "Per layer: what a runtime executing the exported QDQ graph computes it in: 'int8 x uint8' "
                  + "for an int8 weight times a quantized input (int32 accumulation), 'float32 (int8 weights)' "
                  + "when only the weight is narrow, else 'float32'. compressor's runtime computes every layer in "
                  + "float32 on the dequantized values, which is what those runtimes' results equal."),
        Entry(field: "macsPerImage", title: "MACs per image",
              text: "Multiply-accumulates of Conv and Linear layers for one image: out_h·out_w·O·(C/groups)·kh·kw "
                  + "per convolution, in·out per linear layer; other ops count 0."),
        Entry(field: "latency", title: "Latency",
              text: "Milliseconds to run one batch of seeded random images, after warm-up runs; timed runs repeat "
                  + "until both a minimum count and a minimum time are reached. Median, 90th percentile (p90), "
                  + "min and max over the timed runs. All models are measured in one process, one after another, "
                  + "by the same code as `compressor bench`."),
        Entry(field: "imagesPerSecond", title: "Images/s",
              text: "Batch size × 1000 / median latency in ms."),
        Entry(field: "top1", title: "Top-1 accuracy",
              text: "Fraction of test images whose label scores strictly highest (ties count for the label), "
                  + "computed by the same code as `compressor eval`."),
        Entry(field: "top5", title: "Top-5 accuracy",
              text: "Fraction of test images whose label is among the five highest scores."),
        Entry(field: "top1Change", title: "Top-1 change",
              text: "This model's top-1 minus the baseline's, as a fraction; shown in percentage points (pp)."),
        Entry(field: "validationAccuracy", title: "Validation accuracy",
              text: "Top-1 and top-5 on the validation split: the last training images held out "
                  + "(`--validation-count`), the split `train`, `finetune` and every choice use; the test "
                  + "split is for reported numbers. Measured when asked (`--validation`)."),
        Entry(field: "sparsity", title: "Sparsity",
              text: "Per layer: fraction of zero elements in the layer's weight tensor (the Conv/Linear weight, "
                  + "else its first initializer)."),
        Entry(field: "rank", title: "Rank",
              text: "Per layer: the rank of a low-rank factorized weight; '-' (null) for a dense layer."),
        Entry(field: "bytes", title: "Layer bytes",
              text: "Per layer: file bytes of every initializer the layer reads, records included."),
        Entry(field: "paretoFronts", title: "Pareto front",
              text: "Models no other model beats on both axes: none is at most as large (or as slow) and at least "
                  + "as accurate while strictly better in one. Latency fronts use the chart batch and threads."),
    ]

    /// The definitions by JSON field name.
    public static var dictionary: [String: String] {
        Dictionary(uniqueKeysWithValues: all.map { ($0.field, $0.text) })
    }
}
