package record

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// ID returns the row's stable identity: its `id` field (a string as it is,
// any other JSON value as its text), else "h:" and the first 16 hex digits of
// the SHA-256 of the row's canonical JSON (keys sorted, compact). The hash
// does not depend on key order or whitespace.
func (r *Row) ID() string {
	if r.id != "" {
		return r.id
	}
	if raw := r.Raw("id"); raw != nil {
		if s, ok := r.String("id"); ok {
			r.id = s
		} else {
			r.id = string(raw)
		}
		return r.id
	}
	r.id = "h:" + canonicalHash(r)
	return r.id
}

func canonicalHash(r *Row) string {
	var v any
	// Rows were validated when parsed, so this cannot fail; if it ever did,
	// hashing the raw bytes is still stable.
	b := r.AppendJSON(nil)
	if err := json.Unmarshal(b, &v); err == nil {
		if c, err := json.Marshal(v); err == nil {
			b = c
		}
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Key is the identity of one output row: a row id and a sample index.
type Key struct {
	ID     string
	Sample int
}

// Shard is a slice i of n of a row stream, chosen by a hash of the row id.
// The zero value selects everything.
type Shard struct {
	Index, Count int
}

// ParseShard parses "i/n" (0 <= i < n). An empty string is the whole input.
func ParseShard(s string) (Shard, error) {
	if s == "" {
		return Shard{}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("shard %q: want i/n with 0 <= i < n", s)
	}
	return Shard{Index: i, Count: n}, nil
}

// Contains reports whether the row with this id belongs to the shard.
func (s Shard) Contains(id string) bool {
	if s.Count <= 1 {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()%uint64(s.Count) == uint64(s.Index)
}

// String formats the shard as "i/n" ("" for everything).
func (s Shard) String() string {
	if s.Count <= 1 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Seed derives a request seed from a row id, a sample index and a base seed,
// so that a rerun sends byte-identical requests. The result fits in 31 bits,
// which every server accepts.
func Seed(id string, sample int, base int64) int64 {
	h := sha256.New()
	var buf [16]byte
	binary.LittleEndian.PutUint64(buf[:8], uint64(sample))
	binary.LittleEndian.PutUint64(buf[8:], uint64(base))
	h.Write(buf[:])
	h.Write([]byte(id))
	sum := h.Sum(nil)
	return int64(binary.LittleEndian.Uint32(sum) & 0x7fffffff)
}
