import Testing
import Compress
@testable import Prune

@Suite struct PruneLibraryTests {
    @Test func passNamesAreUnique() {
        let names = PruneLibrary.passes.map { $0.name }
        #expect(Set(names).count == names.count)
    }
}
