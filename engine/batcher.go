package engine

import (
	"context"
	"errors"
	"sync"

	"github.com/crucible-ml/crucible/engine/tokenizer"
)

// ErrClosed is returned for requests to a closed Batcher.
var ErrClosed = errors.New("engine: batcher closed")

// Batcher runs many generation requests over one model with continuous
// batching: requests join the running batch as soon as a slot is free, each
// decode step advances every running sequence by one token, and a finished
// sequence leaves at once. Generate is safe to call from many goroutines.
type Batcher struct {
	m        Model
	tok      *tokenizer.Tokenizer
	maxBatch int

	submit    chan *job
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
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
	b := &Batcher{m: m, tok: tok, maxBatch: max(maxBatch, 1), submit: make(chan *job),
		quit: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

// Generate runs one request and blocks until it finishes, fails, or ctx ends.
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

type running struct {
	j *job
	s *seq
}

func (b *Batcher) loop() {
	defer close(b.done)
	var active []*running
	var pool []State // states of finished sequences, reused
	release := func(r *running, res *GenResult, err error) {
		r.j.out <- jobResult{res: res, err: err}
		pool = append(pool, r.s.st)
	}
	var states []State
	var tokens []int
	var logits [][]float32
	for {
		// Wait for work when idle; otherwise take what is waiting.
		if len(active) == 0 {
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
		active = kept
		if len(active) == 0 {
			continue
		}

		// One decode step over every running sequence.
		states, tokens, logits = states[:0], tokens[:0], logits[:0]
		for _, r := range active {
			states = append(states, r.s.st)
			tokens = append(tokens, r.s.res.Tokens[len(r.s.res.Tokens)-1])
			logits = append(logits, r.s.logits)
		}
		if err := DecodeStep(context.Background(), b.m, states, tokens, logits); err != nil {
			for _, r := range active {
				release(r, nil, err)
			}
			active = active[:0]
			continue
		}
		for _, r := range active {
			r.s.next()
		}
	}
}

// admit prefills a new request and adds it to the batch (or answers it at
// once when it fails or finishes within its first token).
func (b *Batcher) admit(active []*running, j *job, pool *[]State) []*running {
	var st State
	if n := len(*pool); n > 0 {
		st, *pool = (*pool)[n-1], (*pool)[:n-1]
	}
	s, err := newSeq(b.m, b.tok, &j.req, st)
	if err == nil {
		err = s.prefill(j.ctx, b.m)
	}
	if err != nil {
		j.out <- jobResult{err: err}
		if st != nil {
			*pool = append(*pool, st)
		}
		return active
	}
	return append(active, &running{j: j, s: s})
}
