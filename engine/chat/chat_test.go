package chat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crucible-ml/crucible/engine/tokenizer"
)

// TestFixtureRenderings renders every chat case of the tokenizer fixtures
// with their template and checks the text and the ids against the reference.
func TestFixtureRenderings(t *testing.T) {
	dirs := map[string]string{}
	for _, pat := range []string{"../tokenizer/testdata/*/cases.json", "../../../shared/fixtures/tokenizers/*/cases.json"} {
		m, _ := filepath.Glob(pat)
		for _, c := range m {
			dirs[filepath.Base(filepath.Dir(c))] = filepath.Dir(c)
		}
	}
	if len(dirs) == 0 {
		t.Fatal("no tokenizer fixtures")
	}
	for name, dir := range dirs {
		t.Run(name, func(t *testing.T) {
			tok, err := tokenizer.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Config == nil || tok.Config.ChatTemplate == "" {
				// The tokenizer-only fixtures (SmolLM2, TinyLlama shapes)
				// carry no template; the chat cases below must not be there.
				if b, _ := os.ReadFile(filepath.Join(dir, "cases.json")); strings.Contains(string(b), `"chat"`) {
					t.Fatal("chat cases without a chat template")
				}
				t.Skip("no chat template")
			}
			tmpl, err := Compile(tok.Config.ChatTemplate)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, "cases.json"))
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				Chat []struct {
					Messages            []Message `json:"messages"`
					AddGenerationPrompt bool      `json:"add_generation_prompt"`
					Text                string    `json:"text"`
					IDs                 []int     `json:"ids"`
				} `json:"chat"`
			}
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			if len(c.Chat) == 0 {
				t.Fatal("no chat cases")
			}
			for i, tc := range c.Chat {
				got, err := tmpl.Render(tc.Messages, Options{AddGenerationPrompt: tc.AddGenerationPrompt,
					BOSToken: tok.Config.BOSToken, EOSToken: tok.Config.EOSToken})
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.Text {
					t.Errorf("case %d: rendered %q, want %q", i, got, tc.Text)
				}
				ids := tok.Encode(got, false)
				if len(ids) != len(tc.IDs) {
					t.Errorf("case %d: %d ids, want %d", i, len(ids), len(tc.IDs))
					continue
				}
				for j := range ids {
					if ids[j] != tc.IDs[j] {
						t.Errorf("case %d: ids %v, want %v", i, ids, tc.IDs)
						break
					}
				}
			}
		})
	}
}

// Real-model templates exercise more of Jinja than the fixtures' ChatML.
func TestTemplates(t *testing.T) {
	msgs := []Message{{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "2+2?"}}
	tests := []struct {
		name, src, want string
	}{
		{"llama3",
			`{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}`,
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"qwen2.5 (no tools branch)",
			`{%- if tools %}TOOLS{%- else %}{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}{%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}{%- endif %}{%- endif %}{%- for message in messages %}{%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}`,
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := Compile(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tmpl.Render(msgs, Options{AddGenerationPrompt: true, BOSToken: "<|begin_of_text|>"})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
	if _, err := Compile(""); err != ErrNoTemplate {
		t.Errorf("Compile(\"\") = %v, want ErrNoTemplate", err)
	}
}

func TestEndOfTurn(t *testing.T) {
	for _, tc := range []struct {
		src, want string
		ok        bool
	}{
		{"{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}", "<|im_end|>\n", true},
		{"{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}", "</s>", true},
		{"{% for m in messages %}{{ m.content | upper }}{% endfor %}", "", false},
	} {
		tmpl, err := Compile(tc.src)
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := tmpl.EndOfTurn(Options{BOSToken: "<s>", EOSToken: "</s>"})
		if err != nil || got != tc.want || ok != tc.ok {
			t.Errorf("%q: EndOfTurn = %q, %v, %v; want %q, %v", tc.src, got, ok, err, tc.want, tc.ok)
		}
	}
	// The real templates of the fixtures end an assistant turn with their end-of-turn token.
	for dir, want := range map[string]string{"qwen2.5": "<|im_end|>\n", "llama3": "<|eot_id|>"} {
		tok, err := tokenizer.LoadConfig(filepath.Join("../../../shared/fixtures/real", dir))
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal(err)
			}
			t.Skip(err)
		}
		tmpl, err := Compile(tok.ChatTemplate)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok, err := tmpl.EndOfTurn(Options{BOSToken: tok.BOSToken, EOSToken: tok.EOSToken}); err != nil || !ok || got != want {
			t.Errorf("%s: EndOfTurn = %q, %v, %v; want %q", dir, got, ok, err, want)
		}
	}
}
