import Compress

/// The blocks of layerwise imitation (Zhou et al., "Go Wide, Then Narrow:
/// Efficient Training of Deep Thin Networks", ICML 2020): teacher and
/// student are cut into blocks (`Graph.blockOutputs()`) and
/// matched **by the order of their block outputs**, so a model and its
/// pruned, factorized or thinner copy match whatever their layers are
/// called; each student block learns to reproduce its teacher block's output.
struct LayerwiseBlocks {
    /// Per block, in order: the student's block output imitating the teacher's.
    let matches: [FeatureMatch]
    /// Per block, the student parameters that block holds (those its output
    /// depends on that no earlier block output does).
    let parameters: [Set<String>]

    /// - Throws: `ParameterError` naming `pass` when the two have different
    ///   numbers of blocks (listing both), none, or a block pair whose outputs
    ///   cannot be compared (ranks, spatial sizes; `pools` as for hints).
    init(student: Model, teacher: Model, pools: Bool, pass: String) throws {
        let (studentBlocks, teacherBlocks) = (try student.graph.blockOutputs(), try teacher.graph.blockOutputs())
        guard studentBlocks.count == teacherBlocks.count, !studentBlocks.isEmpty else {
            let problem = studentBlocks.isEmpty
                ? "the student has no blocks to imitate (a block ends where a conv or linear layer reads a value every path passes through)"
                : "layerwise imitation needs a teacher and student of the same depth: the teacher has \(teacherBlocks.count) blocks "
                    + "(\(teacherBlocks.joined(separator: ", "))) but the student \(studentBlocks.count) (\(studentBlocks.joined(separator: ", ")))"
            throw ParameterError(pass: pass, problems: [problem])
        }
        let (studentShapes, teacherShapes) = (try student.graph.inferShapes(batch: 1), try teacher.graph.inferShapes(batch: 1))
        var problems: [String] = []
        var matches: [FeatureMatch] = []
        for (k, (s, t)) in zip(studentBlocks, teacherBlocks).enumerated() {
            let label = "block \(k + 1) of \(studentBlocks.count) (student '\(s)', teacher '\(t)')"
            switch FeatureMatch.make(student: s, teacher: t, studentShapes: studentShapes, teacherShapes: teacherShapes,
                                     pools: pools, label: label) {
            case .success(let match): matches.append(match)
            case .failure(let problem): problems.append(problem.message)
            }
        }
        guard problems.isEmpty else { throw ParameterError(pass: pass, problems: problems) }
        self.matches = matches
        var before = Set<String>()
        parameters = studentBlocks.map { block in
            let upstream = student.graph.parametersUpstream(of: [block])
            defer { before = upstream }
            return upstream.subtracting(before)
        }
    }

    /// Block `k`'s steps when `total` steps are split evenly over the blocks, in order.
    func steps(ofBlock k: Int, total: Int) -> Range<Int> {
        (k * total / matches.count)..<((k + 1) * total / matches.count)
    }
}
