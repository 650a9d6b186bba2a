package synth

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestCheckInstruction(t *testing.T) {
	tests := []struct {
		id     string
		kwargs map[string]any
		resp   string
		want   bool
	}{
		{"keywords:existence", map[string]any{"keywords": []any{"river", "Garden"}}, "The garden by the River.", true},
		{"keywords:existence", map[string]any{"keywords": []any{"river", "garden"}}, "The river.", false},
		{"keywords:frequency", map[string]any{"keyword": "cat", "frequency": 2.0, "relation": "at least"}, "cat CAT dog", true},
		{"keywords:frequency", map[string]any{"keyword": "cat", "frequency": 2, "relation": "less than"}, "cat cat", false},
		{"keywords:forbidden_words", map[string]any{"forbidden_words": []any{"bad"}}, "badge is fine", true},
		{"keywords:forbidden_words", map[string]any{"forbidden_words": []any{"bad"}}, "that is Bad.", false},
		{"keywords:letter_frequency", map[string]any{"letter": "z", "let_frequency": 2, "let_relation": "at least"}, "Zoo zoo", true},
		{"keywords:letter_frequency", map[string]any{"letter": "z", "let_frequency": 2, "let_relation": "less than"}, "Zoo zoo", false},
		{"length_constraints:number_words", map[string]any{"num_words": 3, "relation": "less than"}, "two words", true},
		{"length_constraints:number_words", map[string]any{"num_words": 3, "relation": "at least"}, "two words", false},
		{"length_constraints:number_sentences", map[string]any{"num_sentences": 3, "relation": "at least"}, "One. Two! Three?", true},
		{"length_constraints:number_sentences", map[string]any{"num_sentences": 3, "relation": "less than"}, "One. Two! Three", false},
		{"length_constraints:number_paragraphs", map[string]any{"num_paragraphs": 2}, "first\n\n***\n\nsecond", true},
		{"length_constraints:number_paragraphs", map[string]any{"num_paragraphs": 2}, "first\n***\n***\nsecond", false},
		{"detectable_content:postscript", map[string]any{"postscript_marker": "P.S."}, "Hi.\n\nP.S. bye", true},
		{"detectable_content:postscript", map[string]any{"postscript_marker": "P.S."}, "Hi. bye", false},
		{"detectable_content:number_placeholders", map[string]any{"num_placeholders": 2}, "At [address] on [date].", true},
		{"detectable_content:number_placeholders", map[string]any{"num_placeholders": 2}, "At [address].", false},
		{"detectable_format:number_bullet_lists", map[string]any{"num_bullets": 2}, "* one\n* two", true},
		{"detectable_format:number_bullet_lists", map[string]any{"num_bullets": 2}, "* one\n- two\n* three", false},
		{"detectable_format:title", nil, "<<My Poem>>\nroses", true},
		{"detectable_format:title", nil, "My Poem\nroses", false},
		{"detectable_format:number_highlighted_sections", map[string]any{"num_highlights": 2}, "*one* and **two**", true},
		{"detectable_format:number_highlighted_sections", map[string]any{"num_highlights": 2}, "*one* only", false},
		{"detectable_format:json_format", nil, "```json\n{\"a\": 1}\n```", true},
		{"detectable_format:json_format", nil, "a: 1", false},
		{"startend:end_checker", map[string]any{"end_phrase": "Any other questions?"}, "Done. any other questions?  ", true},
		{"startend:end_checker", map[string]any{"end_phrase": "Any other questions?"}, "Any other questions? Bye.", false},
		{"startend:quotation", nil, `"all quoted"`, true},
		{"startend:quotation", nil, `"half quoted`, false},
		{"change_case:english_lowercase", nil, "all lower case.", true},
		{"change_case:english_lowercase", nil, "Not all lower.", false},
		{"change_case:english_capital", nil, "ALL CAPS!", true},
		{"change_case:english_capital", nil, "ALL CAPs", false},
		{"punctuation:no_comma", nil, "no commas here", true},
		{"punctuation:no_comma", nil, "one, comma", false},
		{"combination:repeat_prompt", map[string]any{"prompt_to_repeat": "Say hi."}, "say hi. Hi!", true},
		{"combination:repeat_prompt", map[string]any{"prompt_to_repeat": "Say hi."}, "Hi! Say hi.", false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, err := CheckInstruction(tt.id, tt.kwargs, tt.resp)
			if err != nil || got != tt.want {
				t.Errorf("CheckInstruction(%s, %v, %q) = %v, %v; want %v", tt.id, tt.kwargs, tt.resp, got, err, tt.want)
			}
		})
	}
	if _, err := CheckInstruction("language:response_language", nil, "hola"); err == nil {
		t.Errorf("an instruction that cannot be verified should be an error")
	}
}

func TestSampleInstructions(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 1))
		ids, kw := SampleInstructions(r, 3, "Write a poem.")
		if len(ids) != len(kw) || len(ids) == 0 || len(ids) > 3 {
			t.Fatalf("seed %d: %v %v", seed, ids, kw)
		}
		slots := map[string]bool{}
		for i, id := range ids {
			if id == "detectable_format:json_format" && len(ids) > 1 {
				t.Errorf("seed %d: json with others: %v", seed, ids)
			}
			for _, s := range instructions[id].slots {
				if slots[s] {
					t.Errorf("seed %d: contradicting instructions %v", seed, ids)
				}
				slots[s] = true
			}
			d, err := DescribeInstruction(id, kw[i])
			if err != nil || strings.TrimSpace(d) == "" || strings.Contains(d, "%!") {
				t.Errorf("seed %d: %s: description %q, %v", seed, id, d, err)
			}
		}
		r2 := rand.New(rand.NewPCG(seed, 1))
		ids2, _ := SampleInstructions(r2, 3, "Write a poem.")
		if strings.Join(ids, ",") != strings.Join(ids2, ",") {
			t.Errorf("seed %d: draw not reproducible", seed)
		}
	}
}
