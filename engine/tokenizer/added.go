package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// AddedToken is a token matched in the text before the model sees it.
type AddedToken struct {
	ID      int    `json:"id"`
	Content string `json:"content"`
	Special bool   `json:"special"`
	// LStrip and RStrip take the whitespace before and after the token into
	// the match.
	LStrip bool `json:"lstrip"`
	RStrip bool `json:"rstrip"`
	// SingleWord matches the token only where a word character neither
	// precedes nor follows it.
	SingleWord bool `json:"single_word"`
	// Normalized matches the token in the normalized text (its content
	// normalized too) rather than in the raw text. Absent in the file, it
	// is !Special, as in HF.
	Normalized *bool `json:"normalized"`
}

func (a *AddedToken) normalized() bool {
	if a.Normalized == nil {
		return !a.Special
	}
	return *a.Normalized
}

// addedPattern is the text an added token is matched as.
type addedPattern struct {
	text string
	tok  *AddedToken
}

// addedMatcher finds added tokens leftmost-longest, as HF's Aho-Corasick
// automaton with MatchKind::LeftmostLongest: candidates are indexed by
// their first byte, longest first.
type addedMatcher struct {
	n     int
	first [256][]addedPattern
}

func newAddedMatcher(pats []addedPattern) *addedMatcher {
	m := &addedMatcher{}
	for _, p := range pats {
		if p.text == "" {
			continue
		}
		m.first[p.text[0]] = append(m.first[p.text[0]], p)
		m.n++
	}
	for i := range m.first {
		sort.SliceStable(m.first[i], func(x, y int) bool { return len(m.first[i][x].text) > len(m.first[i][y].text) })
	}
	return m
}

// next finds the leftmost (then longest) pattern in s at or after from.
func (m *addedMatcher) next(s string, from int) (int, *addedPattern) {
	for i := from; i < len(s); i++ {
		for k := range m.first[s[i]] {
			p := &m.first[s[i]][k]
			if strings.HasPrefix(s[i:], p.text) {
				return i, p
			}
		}
	}
	return -1, nil
}

// split cuts s into text segments and added tokens as HF's
// AddedVocabulary.find_matches does: single_word matches with a word
// character beside them are skipped, lstrip/rstrip widen a match over the
// whitespace before/after it. seg is called in order for each text segment
// (with its byte offset in s) and tok for each token.
func (m *addedMatcher) split(s string, seg func(text string, off int), tok func(*AddedToken)) {
	if m == nil || m.n == 0 {
		seg(s, 0)
		return
	}
	done := 0 // s[:done] is emitted
	for pos := 0; pos < len(s); {
		at, p := m.next(s, pos)
		if p == nil {
			break
		}
		start, stop := at, at+len(p.text)
		pos = stop
		a := p.tok
		if a.SingleWord && (endsWithWord(s[:start]) || startsWithWord(s[stop:])) {
			continue
		}
		if a.LStrip {
			start = max(len(strings.TrimRightFunc(s[:start], unicode.IsSpace)), done)
		}
		if a.RStrip {
			stop = len(s) - len(strings.TrimLeftFunc(s[stop:], unicode.IsSpace))
			pos = stop
		}
		if done < start {
			seg(s[done:start], done)
		}
		tok(a)
		done = stop
	}
	if done < len(s) {
		seg(s[done:], done)
	}
}

func endsWithWord(s string) bool {
	r, n := utf8.DecodeLastRuneInString(s)
	return n > 0 && isWordChar(r)
}

func startsWithWord(s string) bool {
	r, n := utf8.DecodeRuneInString(s)
	return n > 0 && isWordChar(r)
}
