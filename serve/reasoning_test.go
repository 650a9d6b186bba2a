package serve

import (
	"strings"
	"testing"
)

// TestReasoningSplitStreams: pieces routed as they arrive add up to the
// split of the whole text, whatever the piece boundaries (one byte at a
// time, or whole tags), for text with and without a chain of thought.
func TestReasoningSplitStreams(t *testing.T) {
	split := func(text string) (string, string) { // SplitReasoning's rule for a template that opens <think>
		if i := strings.Index(text, "</think>"); i >= 0 {
			return strings.TrimSpace(text[:i]), strings.TrimLeft(text[i+len("</think>"):], " \n")
		}
		return strings.TrimSpace(text), ""
	}
	for _, text := range []string{
		"add 2 and 3\n</think>\n\nThe answer is \\boxed{5}.",
		"  first\n\nsecond </think>   5",
		"cut inside the reasoning",
		"</think>answer only",
		"stopped at a bracket <", // held as a possible tag until the stream ends
	} {
		wantR, wantA := split(text)
		for _, pieces := range [][]string{bytesOf(text), strings.SplitAfter(text, " "), {text}} {
			r := reasoningSplit{split: split}
			var gotR, gotA strings.Builder
			for _, p := range append(pieces, "") { // the closing chunk carries no text
				re, an := r.add(p, p == "")
				gotR.WriteString(re)
				gotA.WriteString(an)
			}
			if gotR.String() != wantR || gotA.String() != wantA {
				t.Errorf("%q in %d pieces: (%q, %q), want (%q, %q)", text, len(pieces), gotR.String(), gotA.String(), wantR, wantA)
			}
		}
	}
}

func bytesOf(s string) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i : i+1]
	}
	return out
}
