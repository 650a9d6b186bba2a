package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/crucible-ml/crucible/engine/tokenizer"
)

// calibSet is the token sequences of a calibration file: the rows that
// importance is measured on, and the held-out rows that KL and perplexity
// are measured on.
type calibSet struct {
	calib, heldout    [][]int
	calibTokens       int
	heldoutTokens     int
	rowsRead, skipped int
}

// readCalib reads JSON Lines rows from path and takes the sequences of
// field: a string is tokenized with tok (with the special tokens a prompt
// gets, e.g. BOS), an array of integers is used as token ids. Each
// sequence is cut to seqLen tokens; sequences of fewer than 2 tokens are
// skipped. The first rows go to the held-out set until it holds
// heldoutTokens tokens, the next to the calibration set until it holds
// calibTokens (0: every remaining row).
func readCalib(ctx context.Context, path, field string, tok *tokenizer.Tokenizer, vocab, seqLen, calibTokens, heldoutTokens int) (*calibSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("calibration rows: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	cs := &calibSet{}
	line := 0
	for sc.Scan() {
		line++
		if line%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if len(sc.Bytes()) == 0 {
			continue
		}
		var row map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		cs.rowsRead++
		v, ok := row[field]
		if !ok || string(v) == "null" {
			cs.skipped++
			continue
		}
		var ids []int
		var text string
		switch {
		case json.Unmarshal(v, &text) == nil:
			if tok == nil {
				return nil, fmt.Errorf("%s:%d: field %q holds text, but the model folder has no tokenizer (give token ids instead)", path, line, field)
			}
			ids = tok.Encode(text, true)
		case json.Unmarshal(v, &ids) == nil:
			for _, id := range ids {
				if id < 0 || id >= vocab {
					return nil, fmt.Errorf("%s:%d: token id %d outside the vocabulary of %d", path, line, id, vocab)
				}
			}
		default:
			return nil, fmt.Errorf("%s:%d: field %q is neither text nor an array of token ids", path, line, field)
		}
		if len(ids) > seqLen {
			ids = ids[:seqLen]
		}
		if len(ids) < 2 {
			cs.skipped++
			continue
		}
		switch {
		case cs.heldoutTokens < heldoutTokens:
			cs.heldout = append(cs.heldout, ids)
			cs.heldoutTokens += len(ids)
		case calibTokens <= 0 || cs.calibTokens < calibTokens:
			if calibTokens > 0 && cs.calibTokens+len(ids) > calibTokens {
				ids = ids[:max(2, calibTokens-cs.calibTokens)]
			}
			cs.calib = append(cs.calib, ids)
			cs.calibTokens += len(ids)
		}
		if calibTokens > 0 && cs.calibTokens >= calibTokens && cs.heldoutTokens >= heldoutTokens {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("calibration rows %s: %w", path, err)
	}
	if len(cs.calib) == 0 || len(cs.heldout) == 0 {
		return nil, errors.New("calibration rows: " + path + fmt.Sprintf(": %d usable rows with field %q; need at least one for calibration and one held out", len(cs.calib)+len(cs.heldout), field))
	}
	return cs, nil
}
