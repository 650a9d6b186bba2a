package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"github.com/dlclark/regexp2/v2"
	"golang.org/x/text/unicode/norm"
)

// pattern is a Replace normalizer's or decoder's pattern: {"String": s} or
// {"Regex": re}.
type pattern struct {
	Regex  *string `json:"Regex"`
	String *string `json:"String"`
}

// replacer returns a function that replaces every match of p with content.
func (p pattern) replacer(what, content string) (func(string) string, error) {
	switch {
	case p.String != nil:
		old := *p.String
		if old == "" {
			return func(s string) string { return s }, nil
		}
		return func(s string) string { return strings.ReplaceAll(s, old, content) }, nil
	case p.Regex != nil:
		re, err := regexp2.Compile(*p.Regex, regexp2.None)
		if err != nil {
			return nil, fmt.Errorf("tokenizer.json: %s Replace pattern %q: %w", what, *p.Regex, err)
		}
		re.MatchTimeout = matchTimeout
		return func(s string) string {
			out, err := re.Replace(s, escapeReplacement(content), -1, -1)
			if err != nil {
				return s
			}
			return out
		}, nil
	}
	return nil, fmt.Errorf("tokenizer.json: %s Replace without a pattern", what)
}

// escapeReplacement makes content literal in a regexp2 replacement ($ is
// a group reference there; HF's replacement is plain text).
func escapeReplacement(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// parseNormalizer builds the normalizer function (nil for none).
func parseNormalizer(raw json.RawMessage) (func(string) string, error) {
	c, err := parseComponent(raw, "normalizer")
	if err != nil || c == nil {
		return nil, err
	}
	switch c.Type {
	case "NFC":
		return norm.NFC.String, nil
	case "NFKC":
		return norm.NFKC.String, nil
	case "NFD":
		return norm.NFD.String, nil
	case "NFKD":
		return norm.NFKD.String, nil
	case "Lowercase":
		return strings.ToLower, nil
	case "StripAccents":
		return stripAccents, nil
	case "Prepend":
		if c.Prepend == nil {
			return nil, fmt.Errorf("tokenizer.json: normalizer Prepend without \"prepend\"")
		}
		p := *c.Prepend
		// HF prepends only to non-empty text.
		return func(s string) string {
			if s == "" {
				return s
			}
			return p + s
		}, nil
	case "Replace":
		return c.Pattern.replacer("normalizer", c.Content)
	case "Strip":
		left, right := c.StripLeft, c.StripRight
		return func(s string) string {
			if left {
				s = strings.TrimLeftFunc(s, unicode.IsSpace)
			}
			if right {
				s = strings.TrimRightFunc(s, unicode.IsSpace)
			}
			return s
		}, nil
	case "Sequence":
		var fs []func(string) string
		for i, r := range c.Normalizers {
			f, err := parseNormalizer(r)
			if err != nil {
				return nil, fmt.Errorf("normalizers[%d]: %w", i, err)
			}
			if f != nil {
				fs = append(fs, f)
			}
		}
		switch len(fs) {
		case 0:
			return nil, nil
		case 1:
			return fs[0], nil
		}
		return func(s string) string {
			for _, f := range fs {
				s = f(s)
			}
			return s
		}, nil
	}
	return nil, fmt.Errorf("%w: normalizer type %q", ErrUnsupported, c.Type)
}

// stripAccents removes combining marks (Unicode category Mn), as HF's
// StripAccents does (it is used after NFD).
func stripAccents(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) {
			return -1
		}
		return r
	}, s)
}
