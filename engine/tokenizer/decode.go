package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// TokenBytes returns the bytes a token stands for: the ByteLevel-decoded
// bytes of a byte-level vocabulary token, the byte of a <0xNN> byte-fallback
// token, a SentencePiece piece with its ▁ as a space, or an added token's
// content.
func (t *Tokenizer) TokenBytes(id int) []byte {
	if t.byteDecode {
		return t.appendTokenBytes(nil, id)
	}
	s, ok := t.tokenString(id)
	if !ok {
		return nil
	}
	if b, ok := byteToken(s); ok && t.byteFallback {
		return []byte{b}
	}
	if _, added := t.addedByID[id]; !added {
		for _, d := range t.decoders {
			switch d.kind {
			case decReplace:
				s = d.replace(s)
			case decMetaspace:
				s = strings.ReplaceAll(s, d.repl, " ")
			}
		}
	}
	return []byte(s)
}

// tokenString is the vocabulary string of id (an added token's content).
func (t *Tokenizer) tokenString(id int) (string, bool) {
	if a, ok := t.addedByID[id]; ok {
		return a.Content, true
	}
	if id >= 0 && id < len(t.idToTok) && t.idToTok[id] != "" {
		return t.idToTok[id], true
	}
	return "", false
}

func (t *Tokenizer) appendTokenBytes(dst []byte, id int) []byte {
	s, ok := t.tokenString(id)
	if !ok {
		return dst
	}
	return appendByteLevel(dst, s)
}

// appendByteLevel maps each character of s back to its byte; a token with a
// character outside the ByteLevel alphabet is used as its raw UTF-8 (as HF
// does).
func appendByteLevel(dst []byte, s string) []byte {
	start := len(dst)
	for _, r := range s {
		b, ok := runeToByte(r)
		if !ok {
			return append(dst[:start], s...)
		}
		dst = append(dst, b)
	}
	return dst
}

// Decode turns ids into text; skipSpecial drops special tokens. Invalid
// UTF-8 becomes U+FFFD, as in HF's from_utf8_lossy (ByteLevel) or one per
// byte (ByteFallback). Ids outside the vocabulary are dropped.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	if t.byteDecode {
		var b []byte
		for _, id := range ids {
			if skipSpecial && t.IsSpecial(id) {
				continue
			}
			b = t.appendTokenBytes(b, id)
		}
		return lossy(b)
	}
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if skipSpecial && t.IsSpecial(id) {
			continue
		}
		if s, ok := t.tokenString(id); ok {
			toks = append(toks, s)
		}
	}
	if len(t.decoders) == 0 {
		return strings.Join(toks, " ")
	}
	for _, d := range t.decoders {
		toks = d.apply(toks)
	}
	return strings.Join(toks, "")
}

// Decoder kinds.
const (
	decByteLevel = iota
	decByteFallback
	decFuse
	decStrip
	decReplace
	decMetaspace
	decBPE
)

// decodeStep is one decoder of the chain: it maps token strings to token
// strings, as HF's Decoder::decode_chain.
type decodeStep struct {
	kind        int
	byteLevel   bool                // kind == decByteLevel
	replace     func(string) string // Replace
	content     rune                // Strip
	start, stop int                 // Strip
	repl        string              // Metaspace replacement
	never       bool                // Metaspace prepend_scheme never
	suffix      string              // BPEDecoder
}

func (d decodeStep) apply(toks []string) []string {
	switch d.kind {
	case decByteLevel:
		var b []byte
		for _, s := range toks {
			b = appendByteLevel(b, s)
		}
		return []string{lossy(b)}
	case decByteFallback:
		return byteFallback(toks)
	case decFuse:
		return []string{strings.Join(toks, "")}
	case decStrip:
		for i, s := range toks {
			toks[i] = stripRunes(s, d.content, d.start, d.stop)
		}
	case decReplace:
		for i, s := range toks {
			toks[i] = d.replace(s)
		}
	case decMetaspace:
		for i, s := range toks {
			if i == 0 && !d.never {
				// HF drops every replacement character of the first token.
				toks[i] = strings.ReplaceAll(s, d.repl, "")
			} else {
				toks[i] = strings.ReplaceAll(s, d.repl, " ")
			}
		}
	case decBPE:
		for i, s := range toks {
			with := " "
			if i == len(toks)-1 {
				with = ""
			}
			if d.suffix != "" {
				toks[i] = strings.ReplaceAll(s, d.suffix, with)
			}
		}
	}
	return toks
}

// byteToken parses a byte-fallback token "<0xNN>".
func byteToken(s string) (byte, bool) {
	if len(s) != 6 || !strings.HasPrefix(s, "<0x") || s[5] != '>' {
		return 0, false
	}
	var b byte
	for _, c := range []byte(s[3:5]) {
		switch {
		case c >= '0' && c <= '9':
			b = b<<4 | (c - '0')
		case c >= 'a' && c <= 'f':
			b = b<<4 | (c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			b = b<<4 | (c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return b, true
}

// byteFallback joins runs of <0xNN> tokens into their text; a run that is
// not valid UTF-8 becomes one U+FFFD per byte (HF's ByteFallback).
func byteFallback(toks []string) []string {
	out := toks[:0:0]
	var run []byte
	flush := func() {
		if len(run) == 0 {
			return
		}
		if utf8.Valid(run) {
			out = append(out, string(run))
		} else {
			for range run {
				out = append(out, "\uFFFD")
			}
		}
		run = run[:0]
	}
	for _, s := range toks {
		if b, ok := byteToken(s); ok {
			run = append(run, b)
			continue
		}
		flush()
		out = append(out, s)
	}
	flush()
	return out
}

// stripRunes removes up to start leading and stop trailing c from s.
func stripRunes(s string, c rune, start, stop int) string {
	rs := []rune(s)
	lo := 0
	for lo < start && lo < len(rs) && rs[lo] == c {
		lo++
	}
	hi := len(rs)
	for k := 0; k < stop && hi > lo && rs[hi-1] == c; k++ {
		hi--
	}
	return string(rs[lo:hi])
}

// parseDecoder appends the decoder chain to t.decoders.
func (t *Tokenizer) parseDecoder(raw json.RawMessage) error {
	c, err := parseComponent(raw, "decoder")
	if err != nil || c == nil {
		return err
	}
	d := decodeStep{}
	switch c.Type {
	case "Sequence":
		for i, r := range c.Decoders {
			if err := t.parseDecoder(r); err != nil {
				return fmt.Errorf("decoders[%d]: %w", i, err)
			}
		}
		return nil
	case "ByteLevel":
		d.kind, d.byteLevel = decByteLevel, true
	case "ByteFallback":
		d.kind = decByteFallback
	case "Fuse":
		d.kind = decFuse
	case "Strip":
		if utf8.RuneCountInString(c.Content) != 1 || c.Start < 0 || c.Stop < 0 {
			return fmt.Errorf("tokenizer.json: decoder Strip content %q, start %d, stop %d: want one character and counts", c.Content, c.Start, c.Stop)
		}
		d.kind = decStrip
		d.content, _ = utf8.DecodeRuneInString(c.Content)
		d.start, d.stop = c.Start, c.Stop
	case "Replace":
		d.kind = decReplace
		if d.replace, err = c.Pattern.replacer("decoder", c.Content); err != nil {
			return err
		}
	case "Metaspace":
		d.kind, d.repl = decMetaspace, "▁"
		if c.Replacement != nil {
			d.repl = *c.Replacement
		}
		d.never = c.PrependScheme == "never" || (c.AddPrefixSpace != nil && !*c.AddPrefixSpace)
	case "BPEDecoder":
		d.kind, d.suffix = decBPE, "</w>"
		if c.Suffix != nil {
			d.suffix = *c.Suffix
		}
	default:
		return fmt.Errorf("%w: decoder type %q", ErrUnsupported, c.Type)
	}
	t.decoders = append(t.decoders, d)
	return nil
}

// lossy converts b to a string, replacing each maximal invalid sequence as
// Rust's String::from_utf8_lossy does.
func lossy(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			sb.WriteRune(utf8.RuneError)
			b = b[invalidPrefixLen(b):]
			continue
		}
		sb.Write(b[:n])
		b = b[n:]
	}
	return sb.String()
}

// invalidPrefixLen is the length of the invalid sequence at the start of b
// that Rust replaces with a single U+FFFD: a truncated but otherwise valid
// prefix of a multi-byte character counts as one.
func invalidPrefixLen(b []byte) int {
	need := 0
	c := b[0]
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	i := 1
	for ; i <= need && i < len(b); i++ {
		if b[i] < lo || b[i] > hi {
			return i
		}
		lo, hi = 0x80, 0xBF
	}
	return i
}

// Stream decodes tokens one at a time, holding back text until its
// characters are complete. Byte-level tokenizers keep back the bytes of a
// partial UTF-8 character; the others decode a short window of tokens
// and emit what it adds once it no longer ends in U+FFFD (HF's
// DecodeStream), so that decoders like Strip and Metaspace see the
// same context as a full Decode.
type Stream struct {
	t           *Tokenizer
	skipSpecial bool
	pending     []byte // byte-level

	ids         []int // window: the previous token(s) and the new one
	prefix      string
	prefixIndex int
}

// NewStream starts a streaming decode.
func (t *Tokenizer) NewStream(skipSpecial bool) *Stream {
	return &Stream{t: t, skipSpecial: skipSpecial}
}

// Add appends a token and returns the text it completes ("" while a
// character is still partial).
func (s *Stream) Add(id int) string {
	if s.skipSpecial && s.t.IsSpecial(id) {
		return ""
	}
	if !s.t.byteDecode {
		return s.addWindow(id)
	}
	s.pending = s.t.appendTokenBytes(s.pending, id)
	// Keep back a trailing incomplete (but so far valid) character.
	keep := incompleteSuffix(s.pending)
	out := lossy(s.pending[:len(s.pending)-keep])
	s.pending = append(s.pending[:0], s.pending[len(s.pending)-keep:]...)
	return out
}

func (s *Stream) addWindow(id int) string {
	if s.prefix == "" && len(s.ids) > 0 {
		if p := s.t.Decode(s.ids, s.skipSpecial); !strings.HasSuffix(p, "\uFFFD") {
			s.prefix, s.prefixIndex = p, len(s.ids)
		}
	}
	s.ids = append(s.ids, id)
	text := s.t.Decode(s.ids, s.skipSpecial)
	if len(text) <= len(s.prefix) || strings.HasSuffix(text, "\uFFFD") || !strings.HasPrefix(text, s.prefix) {
		return ""
	}
	out := text[len(s.prefix):]
	newPrefixIndex := len(s.ids) - s.prefixIndex
	s.ids = append(s.ids[:0], s.ids[s.prefixIndex:]...)
	s.prefix = s.t.Decode(s.ids, s.skipSpecial)
	s.prefixIndex = newPrefixIndex
	return out
}

// Flush returns what is left (an incomplete character becomes U+FFFD).
func (s *Stream) Flush() string {
	if !s.t.byteDecode {
		text := s.t.Decode(s.ids, s.skipSpecial)
		out := ""
		if len(text) > len(s.prefix) && strings.HasPrefix(text, s.prefix) {
			out = text[len(s.prefix):]
		}
		s.ids, s.prefix, s.prefixIndex = s.ids[:0], "", 0
		return out
	}
	out := lossy(s.pending)
	s.pending = s.pending[:0]
	return out
}

// incompleteSuffix returns how many trailing bytes of b form the start of a
// multi-byte character that more bytes could still complete.
func incompleteSuffix(b []byte) int {
	for k := 1; k <= 3 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c < 0x80 {
			return 0
		}
		if c >= 0xC0 { // a lead byte
			tail := b[len(b)-k:]
			if invalidPrefixLen(tail) == len(tail) && !utf8.FullRune(tail) {
				return k
			}
			return 0
		}
	}
	return 0
}
