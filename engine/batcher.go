package engine

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/crucible-ml/crucible/engine/tokenizer"
)

// ErrClosed is returned for requests to a closed Batcher.
var ErrClosed = errors.New("engine: batcher closed")

// stepTokens bounds the tokens of one batcher step (decode tokens plus
// prompt chunks), so that a long prompt never stalls the running
// sequences for more than a few micro-batches.
const stepTokens = 4 * maxChunk

// Batcher runs many generation requests over one model with continuous
// batching: requests join the running batch as soon as a slot is free, and
// each step feeds every running sequence its next token together with
// chunks of the prompts being prefilled (chunked prefill interleaved with
// decode); a finished sequence leaves at once. Requests with the same
// prompt prefill it once and fork the state; a prompt prefix shared by
// recent prompts (a few-shot preamble) is prefilled once and kept in a
// prefix cache. Generate is safe to call from many goroutines.
type Batcher struct {
	m        Model
	tok      *tokenizer.Tokenizer
	maxBatch int
	cache    *prefixCache

	submit    chan *job
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	stats BatcherStats
}

// BatcherStats are counters of a Batcher's work, read with Stats.
type BatcherStats struct {
	Steps           atomic.Int64 // forward steps
	Running         atomic.Int64 // sequences in the batch now
	PromptTokens    atomic.Int64 // prompt tokens fed (prefilled)
	CachedTokens    atomic.Int64 // prompt tokens taken from the prefix cache or a fork
	GeneratedTokens atomic.Int64
	Forks           atomic.Int64 // sequences started from another's prefill
}

// batcherOptions tune a Batcher; the zero value is the default.
type batcherOptions struct {
	// PrefixCacheBytes bounds the memory of the prefix cache (0: 256 MiB;
	// negative: no cache).
	PrefixCacheBytes int64
}

type job struct {
	ctx context.Context
	req GenRequest
	out chan jobResult // buffered (1): the loop never blocks on a reply
}

type jobResult struct {
	res *GenResult
	err error
}

// NewBatcher starts a batcher that runs up to maxBatch sequences at once.
// tok may be nil (then results carry no text and stop strings never match).
func NewBatcher(m Model, tok *tokenizer.Tokenizer, maxBatch int) *Batcher {
	return newBatcherWith(m, tok, maxBatch, batcherOptions{})
}

// newBatcherWith is NewBatcher with options.
func newBatcherWith(m Model, tok *tokenizer.Tokenizer, maxBatch int, opts batcherOptions) *Batcher {
	budget := opts.PrefixCacheBytes
	if budget == 0 {
		budget = 256 << 20
	}
	b := &Batcher{m: m, tok: tok, maxBatch: max(maxBatch, 1), cache: newPrefixCache(m, budget),
		submit: make(chan *job), quit: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

// Stats returns the batcher's counters.
func (b *Batcher) Stats() *BatcherStats { return &b.stats }

// Generate runs one request and blocks until it finishes, fails, or ctx
// ends. req.OnText, if set, is called from the batcher's goroutine.
func (b *Batcher) Generate(ctx context.Context, req GenRequest) (*GenResult, error) {
	j := &job{ctx: ctx, req: req, out: make(chan jobResult, 1)}
	select {
	case b.submit <- j:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.quit:
		return nil, ErrClosed
	}
	select {
	case r := <-j.out:
		return r.res, r.err
	case <-ctx.Done():
		return nil, ctx.Err() // the loop drops the sequence at its next step
	}
}

// Close stops the batcher; running requests fail with ErrClosed.
func (b *Batcher) Close() {
	b.closeOnce.Do(func() { close(b.quit) })
	<-b.done
}

// running is one sequence in the batch: prefilling (fed < len(prompt)),
// waiting for a leader with the same prompt (follower), or decoding.
type running struct {
	j         *job
	s         *seq
	fed       int        // prompt tokens in the state
	end       int        // prompt tokens fed after this step's chunk
	snapAt    int        // snapshot the state after this many prompt tokens (0: none)
	followers []*running // forked from this one when its prefill reaches their followTo
	leader    *running   // set while waiting for a leader's prefill
	followTo  int        // prompt tokens taken from the leader
	decoding  bool
	gone      bool
}

func (b *Batcher) loop() {
	defer close(b.done)
	var active []*running
	var decoding []*seq // the sequences sampled after a step
	var pool []state    // states of finished sequences, reused
	release := func(r *running, res *GenResult, err error) {
		r.gone = true
		r.j.out <- jobResult{res: res, err: err}
		pool = append(pool, r.s.st)
		for _, f := range r.followers { // prefill on their own
			f.leader = nil
		}
		r.followers = nil
	}
	var states []state
	var tokens []int
	var logits [][]float32
	var chunked []*running
	for {
		// Wait for work when idle; otherwise take what is waiting.
		if len(active) == 0 {
			b.stats.Running.Store(0)
			select {
			case j := <-b.submit:
				active = b.admit(active, j, &pool)
			case <-b.quit:
				return
			}
		}
	admit:
		for len(active) < b.maxBatch {
			select {
			case j := <-b.submit:
				active = b.admit(active, j, &pool)
			case <-b.quit:
				for _, r := range active {
					r.j.out <- jobResult{err: ErrClosed}
				}
				return
			default:
				break admit
			}
		}

		// Retire finished or abandoned sequences.
		kept := active[:0]
		for _, r := range active {
			switch {
			case r.s.done:
				res := r.s.res
				release(r, &res, nil)
			case r.j.ctx.Err() != nil:
				release(r, nil, r.j.ctx.Err())
			default:
				kept = append(kept, r)
			}
		}
		clear(active[len(kept):])
		active = kept
		b.stats.Running.Store(int64(len(active)))
		if len(active) == 0 {
			continue
		}

		// One step: every decoding sequence's next token, then prompt
		// chunks up to the step's token budget.
		states, tokens, logits, chunked = states[:0], tokens[:0], logits[:0], chunked[:0]
		for _, r := range active {
			if r.decoding {
				states = append(states, r.s.st)
				tokens = append(tokens, r.s.res.Tokens[len(r.s.res.Tokens)-1])
				logits = append(logits, r.s.logits)
			}
		}
		budget := max(stepTokens-len(tokens), maxChunk)
		for _, r := range active {
			if r.decoding || r.leader != nil || budget == 0 {
				continue
			}
			prompt := r.s.req.Prompt
			r.end = min(len(prompt), r.fed+budget)
			if r.snapAt > r.fed {
				r.end = min(r.end, r.snapAt)
			}
			scoring := r.s.plBuf != nil
			if scoring {
				r.end = min(r.end, r.fed+promptChunk)
			}
			for i := r.fed; i < r.end; i++ {
				states = append(states, r.s.st)
				tokens = append(tokens, prompt[i])
				var l []float32
				if scoring {
					l = r.s.plBuf[i-r.fed]
				}
				logits = append(logits, l)
			}
			if r.end == len(prompt) && !scoring {
				logits[len(logits)-1] = r.s.logits
			}
			budget -= r.end - r.fed
			chunked = append(chunked, r)
		}
		forwardAll(b.m, states, tokens, logits)
		b.stats.Steps.Add(1)
		decoding = decoding[:0]
		for _, r := range active {
			if r.decoding {
				decoding = append(decoding, r.s)
			}
		}
		sampleAll(decoding)
		for _, s := range decoding {
			s.emit()
			b.stats.GeneratedTokens.Add(1)
		}
		for _, r := range chunked {
			if r.s.plBuf != nil {
				r.s.scorePrompt(r.fed, r.end)
			}
			b.stats.PromptTokens.Add(int64(r.end - r.fed))
			r.fed = r.end
			prompt := r.s.req.Prompt
			if r.fed == r.snapAt && r.fed < len(prompt) {
				b.cache.store(prompt[:r.fed], r.s.st, nil)
				b.fork(r)
			}
			if r.fed == len(prompt) {
				b.prefilled(r)
			}
		}
	}
}

// fork starts the followers that take r's state as it is now (r.fed
// prompt tokens): they continue their own prompts from there.
func (b *Batcher) fork(r *running) {
	kept := r.followers[:0]
	for _, f := range r.followers {
		if f.gone || f.followTo != r.fed {
			if !f.gone {
				kept = append(kept, f)
			}
			continue
		}
		f.leader = nil
		if err := copyState(f.s.st, r.s.st); err != nil {
			f.s.st.Reset()
			continue
		}
		f.fed = r.fed
		if f.fed == len(f.s.req.Prompt) { // the same prompt: the same logits
			copy(f.s.logits, r.s.logits)
			f.decoding = true
			f.s.start()
			f.s.emit()
			b.stats.GeneratedTokens.Add(1)
		}
		b.stats.Forks.Add(1)
		b.stats.CachedTokens.Add(int64(f.fed))
	}
	clear(r.followers[len(kept):])
	r.followers = kept
}

// prefilled starts a sequence whose prompt is in its state (its logits
// hold the next-token logits): it caches the state, forks it into the
// followers, and samples each one's first token.
func (b *Batcher) prefilled(r *running) {
	b.cache.store(r.s.req.Prompt, r.s.st, r.s.logits)
	b.fork(r) // before r samples: sampling may change its logits
	for _, f := range r.followers {
		f.leader = nil // none should be left; they prefill on their own
	}
	r.followers = nil
	r.decoding = true
	r.s.start()
	r.s.emit()
	b.stats.GeneratedTokens.Add(1)
}

// admit adds a new request to the batch (or answers it at once when it is
// invalid). Its prompt comes from the prefix cache as far as possible; a
// prompt that a sequence in the batch is already prefilling waits for that
// prefill and forks it.
func (b *Batcher) admit(active []*running, j *job, pool *[]state) []*running {
	var st state
	if n := len(*pool); n > 0 {
		st, *pool = (*pool)[n-1], (*pool)[:n-1]
	}
	s, err := newSeq(b.m, b.tok, &j.req, st)
	if err != nil {
		j.out <- jobResult{err: err}
		if st != nil {
			*pool = append(*pool, st)
		}
		return active
	}
	r := &running{j: j, s: s}
	if j.req.PromptLogprobs { // every prompt position's logits are wanted: prefill it all
		return append(active, r)
	}
	prompt := j.req.Prompt
	shared := b.cache.sharedPrefix(prompt)
	if e := b.cache.lookup(prompt); e != nil && (len(e.tokens) < len(prompt) || e.logits != nil) {
		if err := copyState(s.st, e.st); err == nil {
			r.fed = len(e.tokens)
			b.stats.CachedTokens.Add(int64(r.fed))
			if r.fed == len(prompt) {
				copy(s.logits, e.logits)
				r.decoding = true
				s.start()
				s.emit()
				b.stats.GeneratedTokens.Add(1)
				return append(active, r)
			}
		} else {
			s.st.Reset()
		}
	}
	// Follow a sequence in the batch that is prefilling the same prompt,
	// or a prefix of at least minSharedPrefix tokens of it.
	var best *running
	bestN := r.fed
	for _, o := range active {
		if o.gone || o.decoding {
			continue
		}
		op := o.s.req.Prompt
		n := commonPrefix(op, prompt)
		switch {
		case n == len(prompt) && n == len(op): // the same prompt (o may itself wait for a shorter prefix)
		case o.leader == nil && n >= minSharedPrefix && n < len(prompt) && (o.snapAt == 0 || o.snapAt == n || n == len(op)):
		default:
			continue
		}
		if n > bestN && o.fed < n {
			best, bestN = o, n
		}
	}
	if best != nil {
		r.leader, r.followTo = best, bestN
		best.followers = append(best.followers, r)
		if bestN < len(best.s.req.Prompt) {
			best.snapAt = bestN
		}
		return append(active, r)
	}
	if shared > r.fed && shared < len(prompt) {
		r.snapAt = shared
	}
	return append(active, r)
}

// commonPrefix is the length of the longest common prefix of a and b.
func commonPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// sampleAll draws the next token of every sequence, spread over the CPUs:
// sampling reads the whole vocabulary (a softmax, and top-p's sort of the
// tokens it keeps), a millisecond or more per sequence that would
// otherwise run on one thread between forward passes. Each sequence has
// its own sampler and random stream, so the tokens do not depend on the
// split.
func sampleAll(seqs []*seq) {
	workers := min(runtime.GOMAXPROCS(0), len(seqs))
	if workers < 2 {
		for _, s := range seqs {
			s.next()
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(seqs); i = int(next.Add(1) - 1) {
				seqs[i].next()
			}
		}()
	}
	wg.Wait()
}
