package engine

import "slices"

// prefixCache keeps snapshots of sequence states after given token
// prefixes (whole prompts, or a prefix many prompts share), so that a
// prompt that starts with one is prefilled only past it. The least
// recently used snapshots go when the cache outgrows its byte budget.
type prefixCache struct {
	m       Model
	budget  int64
	bytes   int64
	entries []*prefixEntry // most recently used last
	// recent are the latest prompts, to spot a shared prefix (a few-shot
	// preamble) as soon as a second prompt starts with it.
	recent [][]int
}

type prefixEntry struct {
	tokens []int
	st     state
	logits []float32 // next-token logits after tokens (nil if not kept)
	bytes  int64
}

// minSharedPrefix is the shortest common prefix worth a snapshot.
const minSharedPrefix = 32

// recentPrompts is how many past prompts are compared with a new one.
const recentPrompts = 16

func newPrefixCache(m Model, budget int64) *prefixCache { return &prefixCache{m: m, budget: budget} }

// lookup returns the entry with the longest prefix of prompt (nil if none),
// marking it used.
func (c *prefixCache) lookup(prompt []int) *prefixEntry {
	best := -1
	for i, e := range c.entries {
		if len(e.tokens) <= len(prompt) && slices.Equal(e.tokens, prompt[:len(e.tokens)]) &&
			(best < 0 || len(e.tokens) > len(c.entries[best].tokens)) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	e := c.entries[best]
	c.entries = append(append(c.entries[:best:best], c.entries[best+1:]...), e)
	return e
}

// sharedPrefix returns the length of the longest prefix of prompt that a
// recent prompt shares (0 if shorter than minSharedPrefix), and records
// prompt as recent.
func (c *prefixCache) sharedPrefix(prompt []int) int {
	best := 0
	for _, r := range c.recent {
		n := 0
		for n < len(r) && n < len(prompt) && r[n] == prompt[n] {
			n++
		}
		best = max(best, n)
	}
	if len(c.recent) == recentPrompts {
		c.recent = c.recent[1:]
	}
	c.recent = append(c.recent, prompt)
	if best < minSharedPrefix {
		return 0
	}
	return best
}

// store snapshots st (which has been fed exactly tokens) with its logits
// (may be nil), unless that prefix is already cached or too large.
func (c *prefixCache) store(tokens []int, st state, logits []float32) {
	if c.budget <= 0 {
		return
	}
	for _, e := range c.entries {
		if slices.Equal(e.tokens, tokens) {
			if e.logits == nil && logits != nil {
				e.logits = slices.Clone(logits)
			}
			return
		}
	}
	snap := c.m.newState(len(tokens))
	if err := copyState(snap, st); err != nil {
		return
	}
	e := &prefixEntry{tokens: slices.Clone(tokens), st: snap, bytes: stateBytes(snap) + 4*int64(len(logits))}
	if logits != nil {
		e.logits = slices.Clone(logits)
	}
	if e.bytes > c.budget {
		return
	}
	for c.bytes+e.bytes > c.budget && len(c.entries) > 0 {
		c.bytes -= c.entries[0].bytes
		c.entries = c.entries[1:]
	}
	c.entries = append(c.entries, e)
	c.bytes += e.bytes
}
