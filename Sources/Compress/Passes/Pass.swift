/// A named, parameterized transformation of a model.
public protocol Pass: Sendable {
    /// The kebab-case name used on the command line and in pipelines.
    static var name: String { get }
}
