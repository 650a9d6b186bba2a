package synth

import (
	"context"
	"reflect"
	"testing"

	"github.com/crucible-ml/crucible/backend"
)

func TestParseList(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		want   []string
		format string
	}{
		{"numbered", "1. Food\n2. Travel\n3. Music", []string{"Food", "Travel", "Music"}, ListNumbered},
		{"numbered with intro and outro", "Sure! Here are the topics:\n\n1. Food\n2) Travel\n(3) Music\n\nLet me know if you need more.",
			[]string{"Food", "Travel", "Music"}, ListNumbered},
		{"numbered with bold and continuation", "1. **Food**: cooking\n   and eating\n2. **Travel**",
			[]string{"Food: cooking and eating", "Travel"}, ListNumbered},
		{"numbered with sub-bullets", "1. Food\n   - pasta\n   - rice\n2. Travel", []string{"Food", "Travel"}, ListNumbered},
		{"numbered with blank lines between items", "1. Food\n\n2. Travel\n\n3. Music", []string{"Food", "Travel", "Music"}, ListNumbered},
		{"bulleted", "- Food\n* Travel\n• Music", []string{"Food", "Travel", "Music"}, ListBulleted},
		{"yaml quoted", "Here you go:\n- \"Food, drink\"\n- 'Travel'\n", []string{"Food, drink", "Travel"}, ListYAML},
		{"json", `["Food", "Travel"]`, []string{"Food", "Travel"}, ListJSON},
		{"json in fence", "```json\n[\"Food\", \"Travel\"]\n```", []string{"Food", "Travel"}, ListJSON},
		{"json object", `{"topics": ["Food", "Travel"]}`, []string{"Food", "Travel"}, ListJSON},
		{"json after prose", `The list is ["a", "b"].`, []string{"a", "b"}, ListJSON},
		{"numbered items holding JSON", "1. Sort [\"b\", \"a\"] in Python.\n2. Reverse a list.", []string{`Sort ["b", "a"] in Python.`, "Reverse a list."}, ListNumbered},
		{"crlf", "1. Food\r\n2. Travel\r\n", []string{"Food", "Travel"}, ListNumbered},
		{"quoted items", "1. \"What is love?\"\n2. “Why?”", []string{"What is love?", "Why?"}, ListNumbered},
		{"prose", "Food and travel are both nice.", nil, ""},
		{"refusal", "I'm sorry, but I can't help with that.", nil, ""},
		{"empty", "", nil, ""},
		{"json of numbers", "[1, 2, 3]", nil, ""},
		{"year is not a number marker", "2023: a good year\n", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, format, ok := ParseList(tt.text)
			if ok != (tt.want != nil) || !reflect.DeepEqual(got, tt.want) || format != tt.format {
				t.Errorf("ParseList(%q) = %q, %q, %v; want %q, %q", tt.text, got, format, ok, tt.want, tt.format)
			}
		})
	}
}

type fixedBackend struct {
	text  string
	calls int
	last  *backend.Request
}

func (f *fixedBackend) Generate(_ context.Context, r *backend.Request) (*backend.Response, error) {
	f.calls++
	f.last = r
	return &backend.Response{Text: f.text}, nil
}

func (f *fixedBackend) Close() error { return nil }

func TestListerConverts(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		converted string
		calls     int
		want      []string
		dropped   int
		err       bool
	}{
		{"parsed locally", "1. a\n2. b", "", 0, []string{"a", "b"}, 0, false},
		{"converted", "Apples and pears grow here.", `["Apples", "pears"]`, 1, []string{"Apples", "pears"}, 0, false},
		{"invented item dropped", "Apples and pears.", `["Apples", "Kiwis"]`, 1, []string{"Apples"}, 1, false},
		{"nothing found", "Apples and pears.", "No list.", 1, nil, 0, true},
		{"all invented", "Apples and pears.", `["Kiwis"]`, 1, nil, 1, true},
		{"empty answer", "  ", "", 0, nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := &fixedBackend{text: tt.converted}
			l := &Lister{Backend: be}
			res, err := l.Read(context.Background(), &backend.Request{Seed: 41, HasSeed: true, Temperature: 1}, tt.text)
			if err != nil {
				t.Fatal(err)
			}
			if be.calls != tt.calls || !reflect.DeepEqual(res.Items, tt.want) || res.Dropped != tt.dropped || (res.Err != "") != tt.err {
				t.Errorf("got %+v after %d calls", res, be.calls)
			}
			if be.last != nil && (be.last.Seed != 42 || be.last.Temperature != 0) {
				t.Errorf("conversion request: seed %d temperature %v, want 42 and greedy", be.last.Seed, be.last.Temperature)
			}
		})
	}
}

func TestBuiltinPromptsParse(t *testing.T) {
	names := BuiltinPrompts()
	if len(names) < 20 {
		t.Fatalf("only %d built-in prompts: %v", len(names), names)
	}
	for _, n := range names {
		if _, err := Prompt(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}
