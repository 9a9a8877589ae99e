// Stop strings over streamed text: matched across piece boundaries, never released in part, released in full when
// they fail to complete.
import GemmaGenerate
import Testing

@Suite struct StopStringTests {
    /// Feeds pieces; returns everything released and the stop, if any.
    func feed(_ stops: [String], _ pieces: [String]) -> (shown: [String], stop: String?) {
        var m = StopStringMatcher(stops)
        var shown: [String] = []
        for p in pieces {
            switch m.append(p) {
            case let .text(t): shown.append(t)
            case let .stop(before, matched): shown.append(before); return (shown, matched)
            }
        }
        shown.append(m.flush())
        return (shown, nil)
    }

    @Test func aStopStringSpanningPiecesIsNeverShown() {
        let r = feed(["o, w"], ["Hel", "lo", ",", " wor", "ld!"])
        #expect(r.stop == "o, w")
        #expect(r.shown.joined() == "Hell")
        // No released piece ever held a part of the stop string.
        // "o" could start the stop string, so it is held from the moment it arrives.
        #expect(r.shown == ["Hel", "l", "", ""])
    }

    @Test func aPrefixThatFailsIsReleased() {
        let r = feed(["abc"], ["xa", "b", "d", "e"])
        #expect(r.stop == nil)
        #expect(r.shown == ["x", "", "abd", "e", ""])
    }

    @Test func heldTextIsFlushedAtTheEnd() {
        let r = feed(["END"], ["the E", "N"])
        #expect(r.stop == nil)
        #expect(r.shown == ["the ", "", "EN"])
    }

    @Test func earliestStopWinsAndMultibyteTextIsKeptWhole() {
        let r = feed(["b", "a!"], ["xa!yb"])
        #expect(r.stop == "a!")
        #expect(r.shown.joined() == "x")
        let u = feed(["é!"], ["café", "!"])
        #expect(u.stop == "é!")
        #expect(u.shown.joined() == "caf")
        let none = feed([], ["plain"])
        #expect(none.shown.joined() == "plain")
    }
}
