package engine

import (
	"strings"
	"testing"
)

func TestPatchConfigJSON(t *testing.T) {
	tests := []struct {
		name, in string
		set      map[string]any
		want     string
		wantErr  bool
	}{
		{"replace in place, Infinity kept", "{\n  \"a\": 1,\n  \"limit\": [0.0, Infinity],\n  \"b\": \"x\"\n}\n",
			map[string]any{"a": 7}, "{\n  \"a\": 7,\n  \"limit\": [0.0, Infinity],\n  \"b\": \"x\"\n}\n", false},
		{"append", "{\n  \"a\": 1\n}", map[string]any{"z": []int{1, 2}},
			"{\n  \"a\": 1,\n  \"z\": [\n    1,\n    2\n  ]\n}", false},
		{"replace an array with a string", `{"p": ["M", "*"], "q": NaN}`, map[string]any{"p": "M"}, `{"p": "M", "q": NaN}`, false},
		{"empty object", `{}`, map[string]any{"k": true}, "{\n  \"k\": true\n}", false},
		{"string holding Infinity", `{"s": "Infinity \" NaN", "n": 1}`, map[string]any{"n": 2}, `{"s": "Infinity \" NaN", "n": 2}`, false},
		{"not an object", `[1, 2]`, map[string]any{"a": 1}, "", true},
		{"trailing data", `{"a": 1} {}`, map[string]any{"a": 1}, "", true},
		{"broken", `{"a": }`, map[string]any{"a": 1}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := patchConfigJSON([]byte(tt.in), tt.set)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error, got %s", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			if strings.Contains(tt.in, "Infinity") && !strings.Contains(string(got), "Infinity") {
				t.Error("Infinity lost")
			}
		})
	}
}
