package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// piece is a pre-token on its way through the pre-tokenizer pipeline.
// first marks the piece that starts the input text (Metaspace's "first"
// prepend scheme looks at it, as HF's offsets_original().0 == 0).
type piece struct {
	s     string
	first bool
}

// preStep is one pre-tokenizer: it appends the pieces p splits into.
type preStep interface {
	apply(dst []piece, p piece) []piece
}

// splitStep is Split with the Isolated behaviour (matches and the text
// between them are pieces).
type splitStep struct{ sp splitter }

func (st splitStep) apply(dst []piece, p piece) []piece {
	var buf [16][2]int
	for _, q := range st.sp.split(p.s, buf[:0]) {
		dst = append(dst, piece{p.s[q[0]:q[1]], p.first && q[0] == 0})
	}
	return dst
}

// byteLevelStep is the ByteLevel pre-tokenizer: an optional space before
// each piece, then (use_regex) GPT-2's split. The byte-to-character mapping
// happens in the BPE step (Tokenizer.byteLevel).
type byteLevelStep struct{ prefixSpace, useRegex bool }

func (st byteLevelStep) apply(dst []piece, p piece) []piece {
	s := p.s
	if st.prefixSpace && !strings.HasPrefix(s, " ") {
		s = " " + s
	}
	if !st.useRegex {
		return append(dst, piece{s, p.first})
	}
	for i := 0; i < len(s); {
		end := scanGPT2{}.next(s, i)
		dst = append(dst, piece{s[i:end], p.first && i == 0})
		i = end
	}
	return dst
}

// digitsStep is the Digits pre-tokenizer: runs of numeric characters
// (Unicode N, as Rust's char::is_numeric) become their own pieces, one per
// digit when individual is set.
type digitsStep struct{ individual bool }

func (st digitsStep) apply(dst []piece, p piece) []piece {
	s := p.s
	start := 0
	for i := 0; i < len(s); {
		r, n := runeAt(s, i)
		if !isN(r) {
			i += n
			continue
		}
		if start < i {
			dst = append(dst, piece{s[start:i], p.first && start == 0})
		}
		end := i + n
		if !st.individual {
			end = spanWhile(s, end, isN)
		}
		dst = append(dst, piece{s[i:end], p.first && i == 0})
		start, i = end, end
	}
	if start < len(s) {
		dst = append(dst, piece{s[start:], p.first && start == 0})
	}
	return dst
}

// Metaspace prepend schemes.
const (
	prependAlways = iota
	prependFirst
	prependNever
)

// metaspaceStep is the Metaspace pre-tokenizer: spaces become the
// replacement character, which is put before the piece (always, or only
// before the first piece of the text), and with split each replacement
// character starts a new piece.
type metaspaceStep struct {
	repl   string
	scheme int
	split  bool
}

func (st metaspaceStep) apply(dst []piece, p piece) []piece {
	s := strings.ReplaceAll(p.s, " ", st.repl)
	if !strings.HasPrefix(s, st.repl) &&
		(st.scheme == prependAlways || (st.scheme == prependFirst && p.first)) {
		s = st.repl + s
	}
	if !st.split {
		return append(dst, piece{s, p.first})
	}
	// MergedWithNext: each replacement character joins the text after it.
	start := 0
	for start < len(s) {
		_, n := utf8.DecodeRuneInString(s[start:])
		k := strings.Index(s[start+n:], st.repl)
		if k < 0 {
			break
		}
		cut := start + n + k
		dst = append(dst, piece{s[start:cut], p.first && start == 0})
		start = cut
	}
	if start < len(s) {
		dst = append(dst, piece{s[start:], p.first && start == 0})
	}
	return dst
}

// parsePreTokenizer appends the steps of a pre_tokenizer to t.pre.
func (t *Tokenizer) parsePreTokenizer(raw json.RawMessage) error {
	c, err := parseComponent(raw, "pre_tokenizer")
	if err != nil || c == nil {
		return err
	}
	switch c.Type {
	case "Sequence":
		for i, r := range c.Pretokenizers {
			if err := t.parsePreTokenizer(r); err != nil {
				return fmt.Errorf("pretokenizers[%d]: %w", i, err)
			}
		}
		return nil
	case "ByteLevel":
		t.byteLevel = true
		t.pre = append(t.pre, byteLevelStep{prefixSpace: c.AddPrefixSpace != nil && *c.AddPrefixSpace,
			useRegex: c.UseRegex == nil || *c.UseRegex})
		return nil
	case "Split":
		if c.Invert || (c.Behavior != "Isolated" && c.Behavior != "") {
			return fmt.Errorf("%w: pre_tokenizer Split with behavior %q, invert %v", ErrUnsupported, c.Behavior, c.Invert)
		}
		var pat string
		switch {
		case c.Pattern.Regex != nil:
			pat = *c.Pattern.Regex
		case c.Pattern.String != nil:
			pat = regexpQuote(*c.Pattern.String)
		default:
			return fmt.Errorf("tokenizer.json: pre_tokenizer Split without a pattern")
		}
		sp, err := newSplitter(pat)
		if err != nil {
			return fmt.Errorf("tokenizer.json: pre_tokenizer Split: %w", err)
		}
		t.pre = append(t.pre, splitStep{sp})
		return nil
	case "Digits":
		t.pre = append(t.pre, digitsStep{individual: c.IndividualDigits})
		return nil
	case "Metaspace":
		st := metaspaceStep{repl: "▁", scheme: prependAlways, split: c.Split == nil || *c.Split}
		if c.Replacement != nil {
			if utf8.RuneCountInString(*c.Replacement) != 1 {
				return fmt.Errorf("tokenizer.json: pre_tokenizer Metaspace replacement %q is not one character", *c.Replacement)
			}
			st.repl = *c.Replacement
		}
		switch c.PrependScheme {
		case "", "always":
		case "first":
			st.scheme = prependFirst
		case "never":
			st.scheme = prependNever
		default:
			return fmt.Errorf("%w: pre_tokenizer Metaspace prepend_scheme %q", ErrUnsupported, c.PrependScheme)
		}
		// Files from before prepend_scheme say add_prefix_space.
		if c.AddPrefixSpace != nil && !*c.AddPrefixSpace {
			if c.PrependScheme != "" && c.PrependScheme != "never" {
				return fmt.Errorf("tokenizer.json: pre_tokenizer Metaspace add_prefix_space false contradicts prepend_scheme %q", c.PrependScheme)
			}
			st.scheme = prependNever
		}
		t.pre = append(t.pre, st)
		return nil
	}
	return fmt.Errorf("%w: pre_tokenizer type %q", ErrUnsupported, c.Type)
}

// fastSplit returns the scanner that does the whole pre-tokenization in
// one pass when the pipeline is one byte-level regex split (GPT-2, Llama-3,
// Qwen2 and most byte-level files), else nil.
func (t *Tokenizer) fastSplit() stepper {
	switch {
	case len(t.pre) == 1:
		if bl, ok := t.pre[0].(byteLevelStep); ok && bl.useRegex {
			return scanGPT2{}
		}
	case len(t.pre) == 2:
		sp, ok1 := t.pre[0].(splitStep)
		bl, ok2 := t.pre[1].(byteLevelStep)
		if ok1 && ok2 && !bl.useRegex && !bl.prefixSpace {
			if st, ok := sp.sp.(stepper); ok {
				return st
			}
		}
	}
	return nil
}

// isWordChar is Rust regex's \w: alphabetic, marks, decimal digits,
// connector punctuation and the join controls.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.Is(unicode.Nd, r) ||
		unicode.Is(unicode.Pc, r) || r == '\u200c' || r == '\u200d'
}
