package engine

import (
	"fmt"
	"math/rand/v2"

	"github.com/crucible-ml/crucible/engine/internal/kernel"
)

// Operations on the sequence state of every architecture.

// copyState makes dst continue exactly where src is: same position, KV
// caches copied up to it, Mamba conv and SSM states copied. dst and src
// must come from the same model. Sampling k continuations of one prompt
// prefills it once and copies the state k-1 times.
func copyState(dst, src state) error {
	switch s := src.(type) {
	case *llamaState:
		d, ok := dst.(*llamaState)
		if !ok || len(d.kv) != len(s.kv) {
			return fmt.Errorf("copy state: %T into %T", src, dst)
		}
		d.pos = s.pos
		for i := range s.kv {
			copyKV(&d.kv[i], &s.kv[i], s.pos)
		}
	case *nemotronHState:
		d, ok := dst.(*nemotronHState)
		if !ok || len(d.kv) != len(s.kv) || len(d.mamba) != len(s.mamba) {
			return fmt.Errorf("copy state: %T into %T", src, dst)
		}
		d.pos = s.pos
		for i := range s.kv {
			copyKV(&d.kv[i], &s.kv[i], s.pos)
		}
		for i := range s.mamba {
			copy(d.mamba[i].conv, s.mamba[i].conv)
			copy(d.mamba[i].ssm, s.mamba[i].ssm)
		}
	case *mamba2State:
		d, ok := dst.(*mamba2State)
		if !ok || len(d.layers) != len(s.layers) {
			return fmt.Errorf("copy state: %T into %T", src, dst)
		}
		d.pos = s.pos
		for i := range s.layers {
			copy(d.layers[i].conv, s.layers[i].conv)
			copy(d.layers[i].ssm, s.layers[i].ssm)
		}
	default:
		return fmt.Errorf("copy state: unknown state %T", src)
	}
	return nil
}

func copyKV(dst, src *kernel.KVCache, n int) { dst.CopyFrom(src, n) }

// stateBytes is the memory a state holds now (its KV caches' capacity
// plus its constant Mamba state), in bytes.
func stateBytes(st state) int64 {
	var n int64
	switch s := st.(type) {
	case *llamaState:
		for i := range s.kv {
			n += s.kv[i].Bytes()
		}
	case *nemotronHState:
		for i := range s.kv {
			n += s.kv[i].Bytes()
		}
		for i := range s.mamba {
			n += 4 * int64(len(s.mamba[i].conv)+len(s.mamba[i].ssm))
		}
	case *mamba2State:
		for i := range s.layers {
			n += 4 * int64(len(s.layers[i].conv)+len(s.layers[i].ssm))
		}
	}
	return n
}

// fillRandom sets st as if it had been fed context tokens: its position
// becomes context, its KV caches hold random keys and values there, its
// Mamba states random values. Decode benchmarks use it instead of a long
// prefill.
func fillRandom(st state, context int, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0xf111))
	fill := func(v []float32, a float32) {
		for i := range v {
			v[i] = (rng.Float32()*2 - 1) * a
		}
	}
	kv := func(c *kernel.KVCache) { c.Fill(context, func() float32 { return rng.Float32()*2 - 1 }) }
	switch s := st.(type) {
	case *llamaState:
		s.pos = context
		for i := range s.kv {
			kv(&s.kv[i])
		}
	case *nemotronHState:
		s.pos = context
		for i := range s.kv {
			kv(&s.kv[i])
		}
		for i := range s.mamba {
			fill(s.mamba[i].conv, 1)
			fill(s.mamba[i].ssm, 0.1)
		}
	case *mamba2State:
		s.pos = context
		for i := range s.layers {
			fill(s.layers[i].conv, 1)
			fill(s.layers[i].ssm, 0.1)
		}
	}
}
