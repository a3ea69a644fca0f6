import Compress

/// FitNets' hints (Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR
/// 2015): pairs of a student layer (the guided layer) and a teacher layer
/// (the hint layer) whose output the student's regresses through an adapter.
public struct HintLayers: Sendable, Equatable {
    /// `(student, teacher)` value names, in the order given.
    public var pairs: [(student: String, teacher: String)]

    /// Parses `hint`: `STUDENT=TEACHER[,STUDENT=TEACHER...]`, each a node
    /// (output value) name; problems are appended to `problems`.
    public init(_ text: String, problems: inout [String]) {
        pairs = parsePerLayerValues(text, parameter: "hint", valueName: "teacher layer",
                                    requirement: "naming a layer of the teacher", problems: &problems) {
            $0.isEmpty ? nil : $0
        }.map { ($0.pattern, $0.value) }
    }

    public static func == (a: HintLayers, b: HintLayers) -> Bool {
        a.pairs.elementsEqual(b.pairs) { $0.student == $1.student && $0.teacher == $1.teacher }
    }

    /// The pairs as the parameter's text.
    public var description: String { pairs.map { "\($0.student)=\($0.teacher)" }.joined(separator: ",") }

    /// Each pair matched in `student` and `teacher` (see ``FeatureMatch``).
    ///
    /// - Throws: `ParameterError` with one problem per pair that names a
    ///   layer that does not exist (listing the candidates) or whose values
    ///   cannot be compared (ranks, spatial sizes without `pools`, a
    ///   non-integer pooling ratio).
    func matches(student: Model, teacher: Model, pools: Bool, pass: String) throws -> [FeatureMatch] {
        let (studentShapes, teacherShapes) = (try student.graph.inferShapes(batch: 1), try teacher.graph.inferShapes(batch: 1))
        var problems: [String] = []
        var matches: [FeatureMatch] = []
        for (s, t) in pairs {
            let label = "hint '\(s)=\(t)'"
            var missing = false
            for (name, model, role) in [(s, student, "student"), (t, teacher, "teacher")] where model.graph.producer(of: name) == nil {
                let candidates = model.graph.nodes.map(\.output).joined(separator: ", ")
                problems.append("\(label): the \(role) has no layer '\(name)' (its layers: \(candidates))")
                missing = true
            }
            if missing { continue }
            switch FeatureMatch.make(student: s, teacher: t, studentShapes: studentShapes, teacherShapes: teacherShapes,
                                     pools: pools, label: label) {
            case .success(let match): matches.append(match)
            case .failure(let problem): problems.append(problem.message)
            }
        }
        guard problems.isEmpty else { throw ParameterError(pass: pass, problems: problems) }
        return matches
    }
}
