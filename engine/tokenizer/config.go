package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Config is the part of tokenizer_config.json that generation uses.
type Config struct {
	// ChatTemplate is the Jinja chat template: chat_template.jinja when
	// present, else tokenizer_config.json's chat_template (the "default" one
	// when it is a list of named templates).
	ChatTemplate string
	BOSToken     string
	EOSToken     string
	PadToken     string
	// AddBOSToken and AddEOSToken are tokenizer_config.json's add_bos_token
	// and add_eos_token (nil when absent).
	AddBOSToken, AddEOSToken *bool
}

// LoadConfig reads dir/tokenizer_config.json and dir/chat_template.jinja;
// missing files give an empty config.
func LoadConfig(dir string) (*Config, error) {
	c := &Config{}
	path := filepath.Join(dir, "tokenizer_config.json")
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("load tokenizer config: %w", err)
	default:
		if err := c.parse(b); err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "chat_template.jinja")); err == nil {
		c.ChatTemplate = string(b)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load chat template: %w", err)
	}
	return c, nil
}

func (c *Config) parse(b []byte) error {
	var raw struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
		BOS          json.RawMessage `json:"bos_token"`
		EOS          json.RawMessage `json:"eos_token"`
		Pad          json.RawMessage `json:"pad_token"`
		AddBOS       *bool           `json:"add_bos_token"`
		AddEOS       *bool           `json:"add_eos_token"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	c.AddBOSToken, c.AddEOSToken = raw.AddBOS, raw.AddEOS
	// Token fields are strings or AddedToken objects {"content": ...}.
	tok := func(m json.RawMessage) string {
		var s string
		if json.Unmarshal(m, &s) == nil {
			return s
		}
		var o struct {
			Content string `json:"content"`
		}
		_ = json.Unmarshal(m, &o)
		return o.Content
	}
	c.BOSToken, c.EOSToken, c.PadToken = tok(raw.BOS), tok(raw.EOS), tok(raw.Pad)
	if len(raw.ChatTemplate) > 0 && string(raw.ChatTemplate) != "null" {
		var s string
		if err := json.Unmarshal(raw.ChatTemplate, &s); err == nil {
			c.ChatTemplate = s
		} else {
			var named []struct {
				Name     string `json:"name"`
				Template string `json:"template"`
			}
			if err := json.Unmarshal(raw.ChatTemplate, &named); err != nil {
				return fmt.Errorf("chat_template: %w", err)
			}
			for _, n := range named {
				if n.Name == "default" || c.ChatTemplate == "" {
					c.ChatTemplate = n.Template
				}
			}
		}
	}
	return nil
}
