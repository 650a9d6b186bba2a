package tokenizer

import (
	"encoding/json"
	"fmt"
	"slices"
)

// parsePostProcessor reads the special ids the post-processor puts around
// a single sequence into t.prefix and t.suffix.
func (t *Tokenizer) parsePostProcessor(raw json.RawMessage) error {
	c, err := parseComponent(raw, "post_processor")
	if err != nil || c == nil {
		return err
	}
	switch c.Type {
	case "ByteLevel":
		return nil // offsets only
	case "Sequence":
		for i, r := range c.Processors {
			if err := t.parsePostProcessor(r); err != nil {
				return fmt.Errorf("processors[%d]: %w", i, err)
			}
		}
		return nil
	case "TemplateProcessing":
		seen := false
		for _, item := range c.Single {
			switch {
			case item.Sequence != nil:
				seen = true
			case item.SpecialToken != nil:
				st, ok := c.SpecialTokens[item.SpecialToken.ID]
				if !ok {
					return fmt.Errorf("tokenizer.json: post_processor TemplateProcessing: unknown special token %q", item.SpecialToken.ID)
				}
				if seen {
					t.suffix = append(t.suffix, st.IDs...)
				} else {
					t.prefix = append(t.prefix, st.IDs...)
				}
			}
		}
		return nil
	case "RobertaProcessing", "BertProcessing":
		// cls and sep are [token, id]: <cls> $A <sep>.
		cls, err := tokenPairID(c.Cls)
		if err != nil {
			return fmt.Errorf("tokenizer.json: post_processor %s: %w", c.Type, err)
		}
		sep, err := tokenPairID(c.Sep)
		if err != nil {
			return fmt.Errorf("tokenizer.json: post_processor %s: %w", c.Type, err)
		}
		t.prefix = append(t.prefix, cls)
		t.suffix = append(t.suffix, sep)
		return nil
	}
	return fmt.Errorf("%w: post_processor type %q", ErrUnsupported, c.Type)
}

func tokenPairID(pair []json.RawMessage) (int, error) {
	var id int
	if len(pair) != 2 || json.Unmarshal(pair[1], &id) != nil {
		return 0, fmt.Errorf("cls/sep is not [token, id]")
	}
	return id, nil
}

// applyConfig lets tokenizer_config.json's add_bos_token and add_eos_token
// decide the special tokens of Encode(…, true), as transformers rebuilds
// the post-processor from them (LlamaTokenizerFast.update_post_processor):
// BOS first when add_bos_token, EOS last when add_eos_token. A flag that is
// absent, or a token the vocabulary lacks, leaves tokenizer.json's
// post-processor as it is.
func (t *Tokenizer) applyConfig() {
	c := t.Config
	if c == nil {
		return
	}
	if c.AddBOSToken != nil && c.BOSToken != "" {
		if id, ok := t.TokenID(c.BOSToken); ok {
			t.prefix = slices.DeleteFunc(t.prefix, func(x int) bool { return x == id })
			if *c.AddBOSToken {
				t.prefix = append([]int{id}, t.prefix...)
			}
		}
	}
	if c.AddEOSToken != nil && c.EOSToken != "" {
		if id, ok := t.TokenID(c.EOSToken); ok {
			t.suffix = slices.DeleteFunc(t.suffix, func(x int) bool { return x == id })
			if *c.AddEOSToken {
				t.suffix = append(t.suffix, id)
			}
		}
	}
}
