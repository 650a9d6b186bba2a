package synth

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
)

// Relations of counted constraints, as IFEval spells them.
const (
	RelLessThan = "less than"
	RelAtLeast  = "at least"
)

// instruction is one verifiable instruction of the IFEval registry: a text
// that asks for it and a check that a response follows it. Arguments use
// IFEval's kwargs names.
type instruction struct {
	describe func(a args) string
	check    func(resp string, a args) bool
	sample   func(r *rand.Rand, prompt string) args
	slots    []string // instructions sharing a slot contradict each other
}

type args map[string]any

func (a args) int(k string) int {
	switch v := a[k].(type) {
	case int:
		return v
	case float64:
		return int(v)
	case json.Number:
		n, _ := v.Int64()
		return int(n)
	}
	return 0
}

func (a args) str(k string) string { s, _ := a[k].(string); return s }

func (a args) strs(k string) []string {
	switch v := a[k].(type) {
	case []string:
		return v
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func compare(n, want int, rel string) bool {
	if rel == RelLessThan {
		return n < want
	}
	return n >= want
}

func pickRel(r *rand.Rand) string {
	if r.IntN(2) == 0 {
		return RelLessThan
	}
	return RelAtLeast
}

var (
	wordRE        = regexp.MustCompile(`\w+`)
	sentenceEndRE = regexp.MustCompile(`[.!?]+(\s|$)`)
	placeholderRE = regexp.MustCompile(`\[[^\[\]\n]+\]`)
	bulletStarRE  = regexp.MustCompile(`(?m)^\s*\*[^\*].*$`)
	bulletDashRE  = regexp.MustCompile(`(?m)^\s*-.*$`)
	titleRE       = regexp.MustCompile(`<<[^\n]+>>`)
	highlightRE   = regexp.MustCompile(`\*[^\n\*]+\*`)
	highlight2RE  = regexp.MustCompile(`\*\*[^\n\*]+\*\*`)
	paragraphRE   = regexp.MustCompile(`\s?\*\*\*\s?`)
)

var sampleWords = []string{"balance", "history", "future", "evidence", "community", "network", "pattern",
	"journey", "signal", "quality", "example", "challenge", "energy", "window", "garden", "river"}

var endPhrases = []string{"Is there anything else I can help with?", "Let me know if you have additional questions.",
	"Any other questions?"}

func sampleN(r *rand.Rand, xs []string, n int) []string {
	p := r.Perm(len(xs))
	out := make([]string, n)
	for i := range n {
		out[i] = xs[p[i]]
	}
	return out
}

func quoteAll(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

var instructions = map[string]instruction{
	"keywords:existence": {
		describe: func(a args) string {
			return "Make sure the response contains the words " + quoteAll(a.strs("keywords")) + "."
		},
		check: func(resp string, a args) bool {
			for _, k := range a.strs("keywords") {
				if !strings.Contains(strings.ToLower(resp), strings.ToLower(k)) {
					return false
				}
			}
			return true
		},
		sample: func(r *rand.Rand, _ string) args { return args{"keywords": sampleN(r, sampleWords, 2)} },
	},
	"keywords:frequency": {
		describe: func(a args) string {
			return fmt.Sprintf("The word %q should appear %s %d times.", a.str("keyword"), a.str("relation"), a.int("frequency"))
		},
		check: func(resp string, a args) bool {
			n := strings.Count(strings.ToLower(resp), strings.ToLower(a.str("keyword")))
			return compare(n, a.int("frequency"), a.str("relation"))
		},
		sample: func(r *rand.Rand, _ string) args {
			return args{"keyword": sampleWords[r.IntN(len(sampleWords))], "frequency": 1 + r.IntN(3), "relation": pickRel(r)}
		},
	},
	"keywords:forbidden_words": {
		describe: func(a args) string {
			return "Do not use any of these words: " + quoteAll(a.strs("forbidden_words")) + "."
		},
		check: func(resp string, a args) bool {
			for _, w := range a.strs("forbidden_words") {
				if regexp.MustCompile(`(?i)\b` + regexp.QuoteMeta(w) + `\b`).MatchString(resp) {
					return false
				}
			}
			return true
		},
		sample: func(r *rand.Rand, _ string) args { return args{"forbidden_words": sampleN(r, sampleWords, 2)} },
	},
	"keywords:letter_frequency": {
		describe: func(a args) string {
			return fmt.Sprintf("The letter %q should appear %s %d times in the response.", a.str("letter"), a.str("let_relation"), a.int("let_frequency"))
		},
		check: func(resp string, a args) bool {
			n := strings.Count(strings.ToLower(resp), strings.ToLower(a.str("letter")))
			return compare(n, a.int("let_frequency"), a.str("let_relation"))
		},
		sample: func(r *rand.Rand, _ string) args {
			return args{"letter": string(rune('a' + r.IntN(26))), "let_frequency": 2 + r.IntN(10), "let_relation": pickRel(r)}
		},
	},
	"length_constraints:number_words": {
		describe: func(a args) string {
			return fmt.Sprintf("Answer with %s %d words.", a.str("relation"), a.int("num_words"))
		},
		check: func(resp string, a args) bool {
			return compare(len(wordRE.FindAllString(resp, -1)), a.int("num_words"), a.str("relation"))
		},
		sample: func(r *rand.Rand, _ string) args {
			return args{"num_words": 50 * (1 + r.IntN(10)), "relation": pickRel(r)}
		},
	},
	"length_constraints:number_sentences": {
		describe: func(a args) string {
			return fmt.Sprintf("The response should have %s %d sentences.", a.str("relation"), a.int("num_sentences"))
		},
		check: func(resp string, a args) bool {
			return compare(countSentences(resp), a.int("num_sentences"), a.str("relation"))
		},
		sample: func(r *rand.Rand, _ string) args {
			return args{"num_sentences": 2 + r.IntN(10), "relation": pickRel(r)}
		},
	},
	"length_constraints:number_paragraphs": {
		describe: func(a args) string {
			return fmt.Sprintf("Write exactly %d paragraphs, separated from each other by the markdown divider ***.", a.int("num_paragraphs"))
		},
		check: func(resp string, a args) bool {
			parts := paragraphRE.Split(strings.TrimSpace(resp), -1)
			for _, p := range parts {
				if strings.TrimSpace(p) == "" {
					return false
				}
			}
			return len(parts) == a.int("num_paragraphs")
		},
		sample: func(r *rand.Rand, _ string) args { return args{"num_paragraphs": 2 + r.IntN(4)} },
	},
	"detectable_content:postscript": {
		describe: func(a args) string {
			return fmt.Sprintf("End the response with a postscript that starts with %s", a.str("postscript_marker"))
		},
		check: func(resp string, a args) bool {
			m := strings.ToLower(a.str("postscript_marker"))
			var re *regexp.Regexp
			switch m {
			case "p.s.":
				re = regexp.MustCompile(`(?m)\s*p\.\s?s\..*$`)
			case "p.p.s":
				re = regexp.MustCompile(`(?m)\s*p\.\s?p\.\s?s.*$`)
			default:
				re = regexp.MustCompile(`(?m)\s*` + regexp.QuoteMeta(m) + `.*$`)
			}
			return re.MatchString(strings.ToLower(resp))
		},
		sample: func(r *rand.Rand, _ string) args {
			return args{"postscript_marker": []string{"P.S.", "P.P.S"}[r.IntN(2)]}
		},
		slots: []string{"end"},
	},
	"detectable_content:number_placeholders": {
		describe: func(a args) string {
			return fmt.Sprintf("Include at least %d placeholders in square brackets, such as [address].", a.int("num_placeholders"))
		},
		check: func(resp string, a args) bool {
			return len(placeholderRE.FindAllString(resp, -1)) >= a.int("num_placeholders")
		},
		sample: func(r *rand.Rand, _ string) args { return args{"num_placeholders": 1 + r.IntN(3)} },
	},
	"detectable_format:number_bullet_lists": {
		describe: func(a args) string {
			return fmt.Sprintf("Your answer must contain exactly %d bullet points, written as markdown bullets such as:\n* This is point 1.\n* This is point 2", a.int("num_bullets"))
		},
		check: func(resp string, a args) bool {
			n := len(bulletStarRE.FindAllString(resp, -1)) + len(bulletDashRE.FindAllString(resp, -1))
			return n == a.int("num_bullets")
		},
		sample: func(r *rand.Rand, _ string) args { return args{"num_bullets": 2 + r.IntN(4)} },
	},
	"detectable_format:title": {
		describe: func(args) string {
			return "Give the response a title wrapped in double angular brackets, such as <<poem of joy>>."
		},
		check:  func(resp string, _ args) bool { return titleRE.MatchString(resp) },
		sample: func(*rand.Rand, string) args { return args{} },
	},
	"detectable_format:number_highlighted_sections": {
		describe: func(a args) string {
			return fmt.Sprintf("Highlight at least %d sections of the answer with markdown, i.e. *highlighted section*.", a.int("num_highlights"))
		},
		check: func(resp string, a args) bool {
			n := 0
			for _, h := range highlightRE.FindAllString(resp, -1) {
				if strings.Trim(h, "* ") != "" {
					n++
				}
			}
			for _, h := range highlight2RE.FindAllString(resp, -1) {
				if strings.Trim(h, "* ") != "" {
					n++
				}
			}
			return n >= a.int("num_highlights")
		},
		sample: func(r *rand.Rand, _ string) args { return args{"num_highlights": 1 + r.IntN(3)} },
	},
	"detectable_format:json_format": {
		describe: func(args) string {
			return "Wrap the entire output in JSON format; you may use markdown ticks such as ```."
		},
		check: func(resp string, _ args) bool {
			s := strings.TrimSpace(resp)
			s = strings.TrimPrefix(s, "```json")
			s = strings.TrimPrefix(s, "```Json")
			s = strings.TrimPrefix(s, "```JSON")
			s = strings.TrimPrefix(s, "```")
			s = strings.TrimSuffix(s, "```")
			return json.Valid([]byte(strings.TrimSpace(s)))
		},
		sample: func(*rand.Rand, string) args { return args{} },
		slots:  []string{"start", "end", "case", "format"},
	},
	"startend:end_checker": {
		describe: func(a args) string {
			return fmt.Sprintf("Finish the response with this exact phrase: %s. No other words should follow it.", a.str("end_phrase"))
		},
		check: func(resp string, a args) bool {
			return strings.HasSuffix(strings.ToLower(strings.TrimSpace(resp)), strings.ToLower(strings.TrimSpace(a.str("end_phrase"))))
		},
		sample: func(r *rand.Rand, _ string) args { return args{"end_phrase": endPhrases[r.IntN(len(endPhrases))]} },
		slots:  []string{"end"},
	},
	"startend:quotation": {
		describe: func(args) string { return "Wrap the entire response in double quotation marks." },
		check: func(resp string, _ args) bool {
			s := strings.TrimSpace(resp)
			return len(s) > 1 && s[0] == '"' && s[len(s)-1] == '"'
		},
		sample: func(*rand.Rand, string) args { return args{} },
		slots:  []string{"start", "end"},
	},
	"change_case:english_lowercase": {
		describe: func(args) string {
			return "Write the entire response in English using lowercase letters only; no capital letters are allowed."
		},
		check:  func(resp string, _ args) bool { return resp == strings.ToLower(resp) },
		sample: func(*rand.Rand, string) args { return args{} },
		slots:  []string{"case"},
	},
	"change_case:english_capital": {
		describe: func(args) string {
			return "Write the entire response in English using capital letters only."
		},
		check:  func(resp string, _ args) bool { return resp == strings.ToUpper(resp) },
		sample: func(*rand.Rand, string) args { return args{} },
		slots:  []string{"case"},
	},
	"punctuation:no_comma": {
		describe: func(args) string { return "Do not use any commas in the response." },
		check:    func(resp string, _ args) bool { return !strings.Contains(resp, ",") },
		sample:   func(*rand.Rand, string) args { return args{} },
	},
	"combination:repeat_prompt": {
		describe: func(args) string {
			return "First repeat the request word for word without change, then give your answer (do not say anything before repeating the request)."
		},
		check: func(resp string, a args) bool {
			return strings.HasPrefix(strings.ToLower(strings.TrimSpace(resp)), strings.ToLower(strings.TrimSpace(a.str("prompt_to_repeat"))))
		},
		sample: func(_ *rand.Rand, prompt string) args { return args{"prompt_to_repeat": prompt} },
		slots:  []string{"start"},
	},
}

func countSentences(s string) int {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	n := len(sentenceEndRE.FindAllStringIndex(s, -1))
	if !sentenceEndRE.MatchString(s[len(s)-1:]) {
		n++ // a last sentence without its full stop
	}
	return n
}

// InstructionIDs lists the verifiable instructions this package can ask for
// and check, by IFEval id (e.g. "keywords:existence").
func InstructionIDs() []string {
	ids := make([]string, 0, len(instructions))
	for id := range instructions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// DescribeInstruction returns the text that asks for instruction id with
// IFEval kwargs.
func DescribeInstruction(id string, kwargs map[string]any) (string, error) {
	in, ok := instructions[id]
	if !ok {
		return "", fmt.Errorf("instruction %q is not one this package can verify", id)
	}
	return in.describe(args(kwargs)), nil
}

// CheckInstruction reports whether response follows instruction id with
// IFEval kwargs. An id this package cannot verify (e.g.
// language:response_language) is an error.
func CheckInstruction(id string, kwargs map[string]any, response string) (bool, error) {
	in, ok := instructions[id]
	if !ok {
		return false, fmt.Errorf("instruction %q is not one this package can verify", id)
	}
	return in.check(response, args(kwargs)), nil
}

// SampleInstructions draws k distinct instructions that do not contradict
// each other, with their kwargs, for a prompt. The draw depends only on r.
func SampleInstructions(r *rand.Rand, k int, prompt string) (ids []string, kwargs []map[string]any) {
	all := InstructionIDs()
	used := map[string]bool{}
	for _, i := range r.Perm(len(all)) {
		if len(ids) >= k || used["json"] {
			break
		}
		id, in := all[i], instructions[all[i]]
		if id == "detectable_format:json_format" {
			if len(ids) > 0 {
				continue // JSON output goes with no other instruction
			}
			used["json"] = true
		}
		clash := false
		for _, s := range in.slots {
			clash = clash || used[s]
		}
		if clash {
			continue
		}
		for _, s := range in.slots {
			used[s] = true
		}
		ids = append(ids, id)
		kwargs = append(kwargs, in.sample(r, prompt))
	}
	return ids, kwargs
}
